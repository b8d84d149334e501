"""Training: the registry, a short real run that writes every artifact, both loops, determinism."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import REPO

keras = pytest.importorskip("keras")

from train import models  # noqa: E402
from train.__main__ import below_floor  # noqa: E402
from train.data import load_mnist  # noqa: E402
from train.recipe import ARCHITECTURES, Recipe  # noqa: E402
from train.run import load_saved, train_and_report  # noqa: E402
from train.schedule import batchnorm_momentum  # noqa: E402

ARTIFACTS = ("model.keras", "history.json", "metrics.json", "summary.txt", "curves.png",
             "confusion_matrix.png", "samples.png", "misclassified.png")
METRIC_KEYS = ("test_accuracy", "test_loss", "params", "train_seconds", "per_class",
               "confusion_matrix", "seed", "versions", "data_checksum")


def run_cli(*args: str, module: str = "train") -> subprocess.CompletedProcess:
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    return subprocess.run([sys.executable, "-m", module, *args], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=600, check=False)


@pytest.mark.parametrize(("arch", "params"), [
    ("mlp", 101_770), ("keras-convnet", 34_826), ("notebook-cnn", 121_994),
    ("notebook-cnn-5x5", 3_274_634), ("digitnet-flat", 118_698), ("digitnet-lite", 67_994),
    ("digitnet-mini", 43_370),
])
def test_published_parameter_counts(arch: str, params: int) -> None:
    assert models.build(arch).count_params() == params


def multiply_adds(model) -> int:
    """Multiply-adds of one digit through the convolutions and dense layers."""
    total = 0
    for layer in model.layers:
        out = layer.output.shape
        if isinstance(layer, keras.layers.DepthwiseConv2D):
            kh, kw = layer.kernel_size
            total += out[1] * out[2] * kh * kw * out[3]
        elif isinstance(layer, keras.layers.Conv2D):
            kh, kw = layer.kernel_size
            total += out[1] * out[2] * kh * kw * layer.input.shape[-1] * out[3]
        elif isinstance(layer, keras.layers.Dense):
            total += layer.input.shape[-1] * out[-1]
    return total


def test_digitnet_lite_does_a_fifth_of_digitnet_flat_s_arithmetic() -> None:
    # The README's figures: 3.8 against 19 million multiply-adds.
    lite = multiply_adds(models.build("digitnet-lite"))
    flat = multiply_adds(models.build("digitnet-flat"))
    assert round(lite / 1e6, 1) == 3.8 and round(flat / 1e6) == 19, (lite, flat)
    assert lite * 5 <= flat


def test_default_architecture_fits_the_int8_budget() -> None:
    # One byte per weight as int8: 150 KB leaves room for biases, scales and the flatbuffer.
    assert models.build(models.DEFAULT_ARCH).count_params() < 140_000


def test_every_architecture_the_command_line_offers_is_registered() -> None:
    assert list(models.REGISTRY) == list(ARCHITECTURES)


def test_every_architecture_is_known_again_by_its_keras_name() -> None:
    # What lets a warm start (and its reports) name the architecture it continues.
    for name in models.REGISTRY:
        assert models.arch_of(models.build(name)) == name
    assert models.arch_of(keras.Sequential(name="someone_elses")) is None


def test_the_architecture_comparison_has_a_row_for_every_architecture() -> None:
    # docs/ARCHITECTURES.md is written by `make compare`; an architecture registered since its
    # last run is missing from it until the comparison is run again.
    table = (REPO / "docs" / "ARCHITECTURES.md").read_text()
    rows = {line.split("`")[1] for line in table.splitlines() if line.startswith("| `")}
    assert rows == set(models.REGISTRY), "run make compare"


def test_batchnorm_statistics_settle_within_the_first_epoch() -> None:
    # A full MNIST epoch (422 steps of 128) keeps Keras's default, so the default recipe and
    # the shipped model's weights are unchanged.
    assert batchnorm_momentum(422) == 0.99
    # The README's quick run (1,800 digits: 15 steps) would otherwise keep 86% of the initial
    # statistics (0.99**15) at its first validation and read every digit as one class.
    assert batchnorm_momentum(15) ** 15 <= 0.02 + 1e-9
    assert batchnorm_momentum(1) <= 0.02 + 1e-9


def test_unknown_architecture_names_the_choices() -> None:
    with pytest.raises(KeyError, match="digitnet"):
        models.build("resnet-9000")


@pytest.fixture(scope="module")
def short_run(tmp_path_factory, mnist_dir: Path) -> Path:
    out = tmp_path_factory.mktemp("run")
    result = run_cli("--arch", "keras-convnet", "--limit", "1500", "--epochs", "2",
                     "--clean-epochs", "1", "--data-dir", str(mnist_dir), "--out", str(out))
    assert result.returncode == 0, result.stderr[-2000:]
    (out / "stdout.txt").write_text(result.stdout)
    return out


def made_from_twice(model: Path, command: str, mnist_dir: Path, out: Path) -> dict:
    """`python -m train COMMAND MODEL MODEL`: the metrics of a model made from one model twice."""
    result = run_cli(command, str(model), str(model), "--data-dir", str(mnist_dir),
                     "--out", str(out))
    assert result.returncode == 0, result.stderr[-2000:]
    return json.loads((out / "metrics.json").read_text())


def test_a_blend_keeps_the_tuned_run_s_history(short_run: Path, mnist_dir: Path,
                                               tmp_path: Path) -> None:
    """The blend's metrics go on from the tuned run's phases (the model card lists them)."""
    tuned = json.loads((short_run / "metrics.json").read_text())
    blended = made_from_twice(short_run / "model.keras", "blend", mnist_dir, tmp_path)
    assert blended["phases"][:-1] == tuned["phases"]
    assert blended["phases"][-1]["blend"]["weight"] == 0.5
    assert blended["epochs_run"] == tuned["epochs_run"]
    assert blended["train_seconds"] >= tuned["train_seconds"]
    # a model blended with itself is itself: the same validation digits, read the same
    assert blended["val_accuracy"] == pytest.approx(tuned["val_accuracy"], abs=1e-6)


def test_a_split_that_leaves_no_training_or_validation_digit_is_one_line(
        mnist_dir: Path, tmp_path: Path) -> None:
    # --limit 1 ended in UnboundLocalError inside Keras, --val-split 0.99 of 5 in tf.data.
    for extra, says in ((["--limit", "1"], "leaves 1 training and 0 validation digits"),
                        (["--limit", "5", "--val-split", "0.99"],
                         "leaves 0 training and 5 validation digits")):
        result = run_cli(*extra, "--epochs", "1", "--data-dir", str(mnist_dir), "--out",
                         str(tmp_path / "out"))
        assert result.returncode == 1, result.stderr[-800:]
        assert says in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "out").exists()


def test_a_blend_of_two_architectures_is_one_line(short_run: Path, mnist_dir: Path,
                                                  tmp_path: Path) -> None:
    other = tmp_path / "mini.keras"
    models.build("digitnet-mini").save(other)
    result = run_cli("blend", str(other), str(short_run / "model.keras"), "--data-dir",
                     str(mnist_dir), "--out", str(tmp_path / "blend"))
    assert result.returncode == 1, result.stderr[-2000:]
    assert "differ in architecture" in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "blend" / "model.keras").exists()


def test_an_ensemble_averages_its_members_logits() -> None:
    from convert.confidence import logits_model
    from train.ensemble import ensemble

    keras.utils.set_random_seed(1)
    first, second = models.build("digitnet-mini"), models.build("keras-convnet")
    x = np.random.default_rng(0).random((4, 28, 28, 1), dtype=np.float32)
    joined = ensemble(first, second)
    # It still ends in one Dense softmax, so convert takes its logits like any model's.
    assert isinstance(joined.layers[-1], keras.layers.Dense)
    assert models.arch_of(joined) == "digitnet-mini+keras-convnet"
    expected = (np.asarray(logits_model(first)([x])) + np.asarray(logits_model(second)([x]))) / 2
    np.testing.assert_allclose(np.asarray(logits_model(joined)([x])), expected, atol=1e-5)


def test_an_ensemble_keeps_both_members_histories(short_run: Path, mnist_dir: Path,
                                                  tmp_path: Path) -> None:
    model = short_run / "model.keras"
    member = json.loads((short_run / "metrics.json").read_text())
    joined = made_from_twice(model, "ensemble", mnist_dir, tmp_path)
    [phase] = joined["phases"]
    for role in ("first", "second"):
        assert phase["ensemble"][role]["phases"] == member["phases"]
        assert phase["ensemble"][role]["model"] == str(model)
    assert joined["arch"] == "keras-convnet+keras-convnet"
    assert joined["epochs_run"] == 2 * member["epochs_run"]
    assert joined["train_seconds"] >= 2 * member["train_seconds"]
    # a model joined with itself reads as itself
    assert joined["val_accuracy"] == pytest.approx(member["val_accuracy"], abs=1e-6)


def test_an_ensemble_of_models_held_out_on_different_digits_is_refused(
        short_run: Path, tmp_path: Path, mnist_dir: Path) -> None:
    other = tmp_path / "other"
    other.mkdir()
    (other / "model.keras").write_bytes((short_run / "model.keras").read_bytes())
    metrics = json.loads((short_run / "metrics.json").read_text())
    (other / "metrics.json").write_text(json.dumps({**metrics, "seed": metrics["seed"] + 1}))
    result = run_cli("ensemble", str(short_run / "model.keras"), str(other / "model.keras"),
                     "--data-dir", str(mnist_dir), "--out", str(tmp_path / "joined"))
    assert result.returncode == 1
    assert "trained on different splits" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "joined" / "model.keras").exists()


def test_short_run_writes_every_artifact(short_run: Path) -> None:
    for name in ARTIFACTS:
        assert (short_run / name).stat().st_size > 0, name
    metrics = json.loads((short_run / "metrics.json").read_text())
    for key in METRIC_KEYS:
        assert key in metrics, key
    assert metrics["params"] == 34_826
    assert metrics["test_size"] == 1500
    assert np.array(metrics["confusion_matrix"]).sum() == 1500
    assert set(metrics["per_class"]["3"]) == {"precision", "recall", "f1", "support"}
    history = json.loads((short_run / "history.json").read_text())
    assert len(history["loss"]) == len(history["val_loss"]) == metrics["epochs_run"]
    # Augmented training, then the clean low-rate phase warm-started from it.
    first, clean = metrics["phases"]
    assert first["recipe"]["augment"] and not clean["recipe"]["augment"]
    assert clean["init_from"].endswith("phase1.keras")
    assert (first["saved_as"], clean["saved_as"]) == ("phase1.keras", "model.keras")
    assert clean["recipe"]["learning_rate"] < first["recipe"]["learning_rate"]
    # Even two epochs on 1,350 digits must learn something.
    assert metrics["test_accuracy"] > 0.5


def test_a_warm_start_keeps_and_records_the_saved_model_s_architecture(
        short_run: Path, mnist_dir: Path, tmp_path: Path) -> None:
    # No --arch: the saved model's (a keras-convnet), not the default's name in the reports.
    result = run_cli("--init-from", str(short_run / "model.keras"), "--no-augment", "--epochs",
                     "1", "--limit", "300", "--min-test-accuracy", "0", "--data-dir",
                     str(mnist_dir), "--out", str(tmp_path / "tuned"))
    assert result.returncode == 0, result.stderr[-2000:]
    assert json.loads((tmp_path / "tuned" / "metrics.json").read_text())["arch"] == "keras-convnet"
    assert "keras-convnet: test accuracy" in result.stdout
    # An --arch that names another architecture is refused before any training.
    result = run_cli("--init-from", str(short_run / "model.keras"), "--arch", "digitnet-lite",
                     "--limit", "300", "--data-dir", str(mnist_dir), "--out", str(tmp_path / "x"))
    assert result.returncode == 1
    assert "is a keras-convnet" in result.stderr and "--arch keras-convnet" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "x" / "model.keras").exists()


def test_redirected_progress_is_plain_lines(short_run: Path) -> None:
    # Keras's live bar (carriage returns, colour codes) is for terminals only.
    printed = (short_run / "stdout.txt").read_text()
    assert "\x1b[" not in printed and "\r" not in printed
    # One line per epoch: 2 augmented + 1 clean.
    assert sum("val_loss" in line for line in printed.splitlines()) == 3


def test_evaluate_re_reads_a_saved_model(short_run: Path, mnist_dir: Path) -> None:
    result = run_cli("evaluate", str(short_run / "model.keras"), "--data-dir", str(mnist_dir),
                     "--out", str(short_run / "eval"))
    assert result.returncode == 0, result.stderr[-2000:]
    full = json.loads((short_run / "eval" / "metrics.json").read_text())
    assert np.array(full["confusion_matrix"]).sum() == 10_000
    assert "test accuracy" in result.stdout


@pytest.fixture(scope="module")
def small_mnist(mnist_dir: Path):
    return load_mnist(mnist_dir, download=False)


def _weights_after(small_mnist, out: Path, loop: str) -> tuple[list[np.ndarray], dict]:
    metrics = train_and_report(small_mnist, arch="keras-convnet", out=out, val_split=0.1,
                               recipe=Recipe(epochs=1, batch_size=64, seed=7), loop=loop,
                               limit_n=600)
    return load_saved(out / "model.keras").get_weights(), metrics


def test_same_seed_same_weights(small_mnist, tmp_path: Path) -> None:
    first, _ = _weights_after(small_mnist, tmp_path / "a", "fit")
    second, _ = _weights_after(small_mnist, tmp_path / "b", "fit")
    assert all(np.array_equal(a, b) for a, b in zip(first, second, strict=True))


def test_custom_loop_writes_the_same_artifacts(small_mnist, tmp_path: Path) -> None:
    weights, metrics = _weights_after(small_mnist, tmp_path, "custom")
    for name in ARTIFACTS:
        assert (tmp_path / name).is_file(), name
    history = json.loads((tmp_path / "history.json").read_text())
    assert set(history) >= {"loss", "accuracy", "val_loss", "val_accuracy", "lr"}
    assert metrics["loop"] == "custom"
    assert metrics["test_accuracy"] > 0.3
    assert any(np.abs(w).sum() > 0 for w in weights)


@pytest.mark.parametrize(("args", "message"), [
    (["--epochs", "0"], "argument --epochs: '0' is not a whole number of at least 1"),
    (["--epochs", "abc"], "argument --epochs: 'abc' is not a whole number of at least 1"),
    (["--learning-rate", "fast"], "argument --learning-rate: 'fast' is not a number"),
    (["--clean-epochs", "-1"], "'-1' is not a whole number of at least 0"),
    (["--optimizer", "lbfgs"], "invalid choice"),
    (["--val-split", "1.5"], "between 0 and 1"),
    (["--val-split", "half"], "'half' is not a number between 0 and 1"),
    (["--arch", "nope"], "invalid choice"),
    (["--clean-styles", "1.5"], "between 0 and 1"),
    (["evaluate"], "the following arguments are required: MODEL.keras"),
    (["blend", "a.keras", "b.keras", "--weight", "1.5"], "between 0 and 1"),
    (["ensemble", "a.keras"], "the following arguments are required: SECOND.keras"),
])
def test_bad_flags_exit_2_with_a_reason(args: list[str], message: str) -> None:
    result = run_cli(*args)
    assert result.returncode == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr
    assert "_positive" not in result.stderr and "_fraction" not in result.stderr


def test_a_useless_run_fails_loudly_but_keeps_its_reports(mnist_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "floor"
    result = run_cli("--arch", "mlp", "--limit", "300", "--epochs", "1", "--clean-epochs", "0",
                     "--min-test-accuracy", "0.99", "--data-dir", str(mnist_dir),
                     "--out", str(out))
    assert result.returncode == 1
    assert "TRAINING FAILED: test accuracy" in result.stderr
    assert "below the sanity floor of 99%" in result.stderr
    assert "Traceback" not in result.stderr
    assert (out / "model.keras").is_file() and (out / "metrics.json").is_file()


def test_the_floor_message_names_a_model_that_reads_everything_as_one_digit() -> None:
    one_column = [[0] * 10 for _ in range(10)]
    for row in one_column:
        row[1] = 10
    metrics = {"test_accuracy": 0.1, "confusion_matrix": one_column}
    message = below_floor(metrics, 0.5, Path("runs/latest"))
    assert "test accuracy 10.00% is below the sanity floor of 50%" in message
    assert "it answers 1 for 100% of the test digits" in message
    assert "runs/latest" in message and "--min-test-accuracy 0" in message


def test_missing_data_is_one_clear_line(tmp_path: Path) -> None:
    result = run_cli("--data-dir", str(tmp_path / "absent"), "--limit", "10")
    assert result.returncode == 1
    assert "does not exist" in result.stderr
    assert "Traceback" not in result.stderr


def test_warm_start_from_a_missing_model_is_one_clear_line(tmp_path: Path,
                                                           mnist_dir: Path) -> None:
    result = run_cli("--init-from", str(tmp_path / "absent.keras"), "--limit", "10",
                     "--data-dir", str(mnist_dir))
    assert result.returncode == 1
    assert "absent.keras does not exist" in result.stderr
    assert "Traceback" not in result.stderr


SHIPPED_KERAS = "models/digitnet.keras"


@pytest.mark.parametrize("command", [
    ("train", "--limit", "10"),
    ("train", "evaluate", SHIPPED_KERAS),
    ("train", "blend", SHIPPED_KERAS, SHIPPED_KERAS),
    ("train", "ensemble", SHIPPED_KERAS, SHIPPED_KERAS),
    ("convert", SHIPPED_KERAS, "--calibration-samples", "100"),
    ("convert", "compare", "--epochs", "1", "--limit", "10", "--arch", "mlp"),
], ids=" ".join)
def test_an_out_that_cannot_be_a_folder_is_one_line_before_any_work(
        command: tuple[str, ...], tmp_path: Path, mnist_dir: Path) -> None:
    module, *args = command
    taken = tmp_path / "taken"
    taken.write_text("someone's notes\n")
    for out, why in ((taken, "is a file, not a folder"), (taken / "sub", "cannot write to")):
        result = run_cli(*args, "--out", str(out), "--data-dir", str(mnist_dir), module=module)
        assert result.returncode == 1, result.stderr
        assert why in result.stderr and str(out) in result.stderr
        assert "Traceback" not in result.stderr
        assert "MNIST from" not in result.stdout  # refused before the data was loaded
    assert taken.read_text() == "someone's notes\n"


def test_evaluate_into_the_model_s_own_run_folder_is_one_line_that_keeps_its_metrics(
        tmp_path: Path, mnist_dir: Path) -> None:
    # `train evaluate run/model.keras --out run` replaced the run's metrics.json with the
    # evaluation's, which records no split: blend, ensemble, --teacher and convert then took the
    # model for one trained on the default split (found probing --out). Refused before the data.
    run = tmp_path / "run"
    run.mkdir()
    models.build("mlp").save(run / "model.keras")
    recorded = '{"val_split": 0.2, "seed": 7, "limit": 300}\n'
    (run / "metrics.json").write_text(recorded)
    result = run_cli("evaluate", str(run / "model.keras"), "--out", str(run),
                     "--data-dir", str(mnist_dir))
    assert result.returncode == 1, result.stderr
    [line] = result.stderr.splitlines()
    assert "metrics.json" in line and str(run / "evaluation") in line, line
    assert "MNIST from" not in result.stdout and "test accuracy" not in result.stdout
    assert (run / "metrics.json").read_text() == recorded
    assert sorted(p.name for p in run.iterdir()) == ["metrics.json", "model.keras"]


def test_compare_refuses_a_doc_it_could_not_write_before_training(tmp_path: Path) -> None:
    result = run_cli("compare", "--out", str(tmp_path / "runs"), "--doc", str(tmp_path),
                     "--limit", "10", "--epochs", "1", "--arch", "mlp", module="convert")
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "is a folder; pass the Markdown file" in result.stderr
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


def test_the_distillation_loss_adds_only_the_teacher_s_disagreement() -> None:
    import tensorflow as tf

    from train.distill import TEACHER_WEIGHT, DistillationLoss, label_accuracy

    student = tf.constant([[0.7, 0.2, 0.1] + [0.0] * 7, [0.1, 0.8, 0.1] + [0.0] * 7])
    labels = tf.constant([[0.0], [2.0]])
    hard = keras.losses.sparse_categorical_crossentropy(tf.constant([0, 2]), student).numpy()
    loss = DistillationLoss()
    # A teacher that says what the student says adds nothing to the labels' cross-entropy.
    agreeing = loss.call(tf.concat([labels, student], axis=1), student).numpy()
    np.testing.assert_allclose(agreeing, (1 - TEACHER_WEIGHT) * hard, rtol=1e-4)
    # One that disagrees (sure of 2 for the second digit) adds to that digit's loss only.
    teacher = tf.constant([[0.7, 0.2, 0.1] + [0.0] * 7, [0.05, 0.05, 0.9] + [0.0] * 7])
    disagreeing = loss.call(tf.concat([labels, teacher], axis=1), student).numpy()
    np.testing.assert_allclose(disagreeing[0], agreeing[0], rtol=1e-4)
    assert disagreeing[1] > agreeing[1] + 0.5
    # Accuracy is against the label column, not the teacher's favourite.
    assert label_accuracy(tf.concat([labels, teacher], axis=1), student).numpy().tolist() == [1, 0]


def test_a_student_learns_from_a_teacher_on_the_same_split(short_run: Path, mnist_dir: Path,
                                                           tmp_path: Path) -> None:
    teacher = short_run / "model.keras"
    result = run_cli("--arch", "digitnet-mini", "--teacher", str(teacher), "--limit", "1500",
                     "--epochs", "1", "--clean-epochs", "1", "--data-dir", str(mnist_dir),
                     "--out", str(tmp_path / "student"))
    assert result.returncode == 0, result.stderr[-2000:]
    metrics = json.loads((tmp_path / "student" / "metrics.json").read_text())
    assert [p["recipe"]["teacher"] for p in metrics["phases"]] == [str(teacher)] * 2
    history = json.loads((tmp_path / "student" / "history.json").read_text())
    assert len(history["accuracy"]) == len(history["val_accuracy"]) == 2
    assert metrics["test_accuracy"] > 0.3  # learnt digits, not one class (chance is 0.1)
    # A teacher that held out other digits would hand the student its validation labels.
    result = run_cli("--arch", "digitnet-mini", "--teacher", str(teacher), "--limit", "1000",
                     "--data-dir", str(mnist_dir), "--out", str(tmp_path / "leaky"))
    assert result.returncode == 1
    assert "trained on another split" in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "leaky").exists()


def test_the_custom_loop_distils_as_well(short_run: Path, small_mnist, tmp_path: Path) -> None:
    recipe = Recipe(epochs=1, batch_size=64, clean_epochs=0,
                    teacher=str(short_run / "model.keras"))
    metrics = train_and_report(small_mnist, arch="keras-convnet", out=tmp_path, val_split=0.1,
                               recipe=recipe, loop="custom", limit_n=1500)
    history = json.loads((tmp_path / "history.json").read_text())
    assert history["loss"][0] > 0 and 0.0 < history["val_accuracy"][0] <= 1.0
    assert metrics["test_accuracy"] > 0.3


def test_a_teacher_that_is_not_a_digit_model_is_one_clear_line(mnist_dir: Path,
                                                              tmp_path: Path) -> None:
    odd = keras.Sequential([keras.Input((28, 28, 1)), keras.layers.Flatten(),
                            keras.layers.Dense(5, activation="softmax")])
    odd.save(tmp_path / "five.keras")
    (tmp_path / "junk.keras").write_bytes(b"not a zip")
    for teacher, says in (("five.keras", "answers 10 probabilities"),
                          ("junk.keras", "junk.keras"), ("absent.keras", "does not exist")):
        result = run_cli("--teacher", str(tmp_path / teacher), "--limit", "300",
                         "--data-dir", str(mnist_dir), "--out", str(tmp_path / "out"))
        assert result.returncode == 1, teacher
        assert says in result.stderr and "Traceback" not in result.stderr, result.stderr[-800:]
    assert not (tmp_path / "out").exists()
    # The same model everywhere a digit model is loaded (each was a Keras traceback).
    for command in (["--init-from", str(tmp_path / "five.keras"), "--limit", "300",
                     "--out", str(tmp_path / "out")],
                    ["evaluate", str(tmp_path / "five.keras")]):
        result = run_cli(*command, "--data-dir", str(mnist_dir))
        assert result.returncode == 1, command
        assert "answers 10 probabilities" in result.stderr, result.stderr[-800:]
        assert "Traceback" not in result.stderr
    result = run_cli("evaluate", "models/digitnet_int8.tflite", "--keras",
                     str(tmp_path / "five.keras"), "--data-dir", str(mnist_dir), module="convert")
    assert result.returncode == 1 and "answers 10 probabilities" in result.stderr
    assert "Traceback" not in result.stderr


def _folder(path: Path) -> dict[str, bytes]:
    """Every file in ``path``, hidden ones (a staging folder's) included, by name."""
    return {p.name: p.read_bytes() if p.is_file() else b"<folder>" for p in path.iterdir()}


def _stopped_while_reporting(monkeypatch, stop: type[BaseException]) -> None:
    """Stop the reports part way, after metrics.json (and, before the fix, the model) were
    written: as Ctrl-C or a crash in the plots (a full disk) would."""
    def plot_stopped(*_args, **_kwargs):
        raise stop("stopped while the reports were written")

    monkeypatch.setattr("train.report.plot_confusion", plot_stopped)


@pytest.mark.parametrize("stop", [KeyboardInterrupt, OSError])
def test_a_run_stopped_while_reporting_leaves_the_previous_run_whole(
        small_mnist, tmp_path: Path, monkeypatch, stop: type[BaseException]) -> None:
    out = tmp_path / "run"
    recipe = Recipe(epochs=1, clean_epochs=1, batch_size=64)
    metrics = train_and_report(small_mnist, arch="mlp", out=out, val_split=0.1, recipe=recipe,
                               limit_n=300)
    assert {"model.keras", "phase1.keras", "metrics.json", "curves.png"} <= set(_folder(out))
    assert not [name for name in _folder(out) if name.startswith(".")]  # no staging left
    # The clean phase's warm start is recorded where the checkpoint ends up, not where it was
    # staged: training_phases follows it within the run's folder.
    assert metrics["phases"][1]["init_from"] == str(out / "phase1.keras")
    before = _folder(out)
    _stopped_while_reporting(monkeypatch, stop)
    # Fine-tuning the folder's own model in place, as --init-from out/model.keras does.
    with pytest.raises(stop):
        train_and_report(small_mnist, arch=None, out=out, val_split=0.1, recipe=recipe,
                         limit_n=300, init_from=out / "model.keras")
    assert _folder(out) == before  # the old model beside its own reports, nothing new
    with pytest.raises(stop):  # a first run into a new folder leaves no folder behind
        train_and_report(small_mnist, arch="mlp", out=tmp_path / "new" / "run", val_split=0.1,
                         recipe=recipe, limit_n=300)
    assert not (tmp_path / "new").exists()


def test_ctrl_c_is_one_line_that_says_out_was_left_whole(mnist_dir: Path, tmp_path: Path,
                                                         monkeypatch, capsys) -> None:
    from train.__main__ import main

    out = tmp_path / "run"
    out.mkdir()
    (out / "model.keras").write_bytes(b"the previous model")
    (out / "metrics.json").write_text('{"errors": 1}\n')
    before = _folder(out)
    _stopped_while_reporting(monkeypatch, KeyboardInterrupt)
    status = main(["--arch", "mlp", "--limit", "300", "--epochs", "1", "--clean-epochs", "0",
                   "--data-dir", str(mnist_dir), "--out", str(out)])
    assert status == 1
    [line] = capsys.readouterr().err.splitlines()
    assert line == ("python -m train: error: interrupted; --out has none of this run's files or "
                    "all of them")
    assert _folder(out) == before


@pytest.mark.parametrize("command", ["blend", "ensemble", "evaluate"])
def test_a_blend_ensemble_or_evaluation_stopped_while_reporting_leaves_the_previous_one_whole(
        command: str, small_mnist, tmp_path: Path, monkeypatch) -> None:
    from train.blend import blend_and_report
    from train.ensemble import ensemble_and_report
    from train.run import evaluate_saved

    source = tmp_path / "mlp.keras"
    models.build("mlp").save(source)
    out = tmp_path / "out"
    out.mkdir()
    previous = {"model.keras": b"the previous model", "metrics.json": b'{"errors": 1}\n',
                "per_class.txt": b"the previous table\n"}
    for name, data in previous.items():
        (out / name).write_bytes(data)
    run = {"blend": lambda: blend_and_report(source, source, small_mnist, weight=0.5, out=out),
           "ensemble": lambda: ensemble_and_report(source, source, small_mnist, out=out),
           "evaluate": lambda: evaluate_saved(source, small_mnist, out)}[command]
    _stopped_while_reporting(monkeypatch, KeyboardInterrupt)
    with pytest.raises(KeyboardInterrupt):
        run()
    assert _folder(out) == previous


def test_a_ctrl_c_while_a_run_is_put_in_place_waits_for_its_last_file(
        tmp_path: Path, monkeypatch) -> None:
    import signal

    from train.publish import published_together

    out = tmp_path / "run"
    out.mkdir()
    for name in ("metrics.json", "model.keras"):
        (out / name).write_text("old")
    renamed = Path.replace

    def rename_then_ctrl_c(self: Path, target: Path) -> Path:
        moved = renamed(self, target)
        signal.raise_signal(signal.SIGINT)  # as if pressed right after the first rename
        return moved

    with pytest.raises(KeyboardInterrupt), published_together(out) as staging:
        for name in ("metrics.json", "model.keras"):
            (staging / name).write_text("new")
        monkeypatch.setattr(Path, "replace", rename_then_ctrl_c)
    # Delivered once both were in place: this run's pair, not one file of each run.
    assert {p.name: p.read_text() for p in out.iterdir()} == {"metrics.json": "new",
                                                              "model.keras": "new"}


def test_a_staging_folder_left_by_a_killed_run_is_removed_by_the_next(tmp_path: Path) -> None:
    """A run killed outright (SIGKILL, a power cut) left its hidden staging folder, a copy of
    a model in each, for good; one of a run still going is left alone."""
    import subprocess

    from train.publish import STAGING_PREFIX, published_together

    out = tmp_path / "run"
    gone = subprocess.Popen(["true"])  # a process that has ended: its pid is free
    gone.wait()
    killed = out / f"{STAGING_PREFIX}{gone.pid}-abc"
    running = out / f"{STAGING_PREFIX}{os.getpid()}-def"
    for folder in (killed, running):
        folder.mkdir(parents=True)
        (folder / "model.keras").write_text("a copy")
    with published_together(out) as staging:
        (staging / "model.keras").write_text("new")
    assert not killed.exists()
    assert (running / "model.keras").read_text() == "a copy"
    assert (out / "model.keras").read_text() == "new"


def test_a_staging_folder_that_cannot_be_made_leaves_no_new_out_behind(
        tmp_path: Path, monkeypatch) -> None:
    """--out made for a run whose staging folder could not be made (a full disk, a folder it
    may not write in) was left behind, empty."""
    import tempfile

    from train.publish import published_together

    def full_disk(**_: object) -> str:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(tempfile, "mkdtemp", full_disk)
    out = tmp_path / "new" / "run"
    with pytest.raises(OSError, match="No space"), published_together(out):
        pass
    assert not (tmp_path / "new").exists()
