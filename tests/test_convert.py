"""Conversion: every precision, the integer-only proof, and clear errors."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import REPO
from tests.test_train import run_cli

pytest.importorskip("tensorflow")

from convert.tflite import ConversionError, convert, float_operators
from train import models
from train.data import load_mnist
from train.fit import Recipe
from train.run import train_and_report


@pytest.fixture(scope="module")
def mnist(mnist_dir: Path):
    return load_mnist(mnist_dir, download=False)


@pytest.fixture(scope="module")
def trained(tmp_path_factory, mnist) -> Path:
    """A small model, freshly trained, with its metrics.json beside it."""
    out = tmp_path_factory.mktemp("trained")
    train_and_report(mnist, arch="keras-convnet", out=out, val_split=0.1,
                     recipe=Recipe(epochs=1, seed=1, augment=False), limit_n=3000)
    return out / "model.keras"


@pytest.mark.parametrize("quant", ["int8", "float16", "dynamic", "float32"])
def test_every_precision_converts_and_reads_digits(quant: str, trained: Path, mnist,
                                                   mnist_dir: Path, tmp_path: Path) -> None:
    result = run_cli(str(trained), "--out", str(tmp_path), "--quant", quant, "--allow-drop",
                     "--data-dir", str(mnist_dir), module="convert")
    assert result.returncode == 0, result.stderr[-2000:]
    tflite = tmp_path / f"keras_convnet_{quant}.tflite"
    card = json.loads(tflite.with_suffix(".json").read_text())
    assert card["quantization"] == quant
    assert card["bytes"] == tflite.stat().st_size
    assert card["metrics"]["agreement_with_keras"] > 0.95
    if quant == "int8":
        assert card["input"]["dtype"] == card["output"]["dtype"] == "int8"
        assert float_operators(tflite.read_bytes()) == []
        # The calibration size was chosen on the run's validation digits, never the test set.
        calibration = card["metrics"]["calibration"]
        by_size = calibration["val_accuracy_by_samples"]
        assert len(by_size) > 1
        assert calibration["val_accuracy"] == max(by_size.values())
        assert by_size[str(calibration["samples"])] == calibration["val_accuracy"]
    else:
        assert card["input"]["dtype"] == "float32"


def test_default_architecture_is_integer_only_and_small(mnist) -> None:
    from convert.tflite import representative_data

    flatbuffer = convert(models.build(models.DEFAULT_ARCH), "int8",
                         representative_data(mnist.train.x, count=50))
    assert float_operators(flatbuffer) == []
    assert len(flatbuffer) <= 150 * 1024


def test_the_integer_check_catches_float_kernels(trained: Path) -> None:
    import keras

    flatbuffer = convert(keras.models.load_model(trained), "float32")
    offending = float_operators(flatbuffer)
    assert any("CONV_2D" in op for op in offending)


def test_unknown_quant_is_refused(trained: Path) -> None:
    with pytest.raises(ConversionError, match="unknown --quant"):
        convert(None, "int4")  # type: ignore[arg-type]
    result = run_cli(str(trained), "--quant", "int4", module="convert")
    assert result.returncode == 2
    assert "invalid choice" in result.stderr


def test_missing_and_corrupt_models_get_one_line(tmp_path: Path) -> None:
    result = run_cli(str(tmp_path / "absent.keras"), module="convert")
    assert result.returncode == 1
    assert "does not exist" in result.stderr
    corrupt = tmp_path / "corrupt.keras"
    corrupt.write_bytes(b"PK\x03\x04 this is not a model")
    result = run_cli(str(corrupt), "--out", str(tmp_path), module="convert")
    assert result.returncode == 1
    assert "not a readable Keras model" in result.stderr
    assert "Traceback" not in result.stderr
    broken = tmp_path / "broken.tflite"
    broken.write_bytes(b"not a flatbuffer")
    result = run_cli("evaluate", str(broken), module="convert")
    assert result.returncode == 1
    assert "not a loadable TFLite model" in result.stderr
    assert "Traceback" not in result.stderr


def test_an_interrupted_conversion_leaves_the_previous_model_and_sidecar(
        trained: Path, mnist_dir: Path, tmp_path: Path, monkeypatch, capsys) -> None:
    from convert.__main__ import main

    # The pair a device serves; a new one must replace both or neither (sha256 ties them).
    (tmp_path / "digits_int8.tflite").write_bytes(b"the model in service")
    (tmp_path / "digits_int8.json").write_text('{"sha256": "of the model in service"}\n')
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}

    def ctrl_c(*_args, **_kwargs):  # Ctrl-C while the new model is measured on the test digits
        raise KeyboardInterrupt

    monkeypatch.setattr("convert.pipeline.evaluate_tflite", ctrl_c)
    try:
        code = main([str(trained), "--out", str(tmp_path), "--name", "digits",
                     "--calibration-samples", "100", "--data-dir", str(mnist_dir)])
    except KeyboardInterrupt:
        code = None  # it escaped: a traceback for the user
    # Neither file written over, and no half-made one left behind.
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before
    assert code == 1
    err = capsys.readouterr().err
    assert "interrupted" in err and "left as they were" in err


def shipped_sidecar(**changes: object) -> dict:
    """models/digitnet_int8.json with some fields replaced (None: removed)."""
    card = json.loads((REPO / "models" / "digitnet_int8.json").read_text())
    card.update(changes)
    return {k: v for k, v in card.items() if v is not None}


def _wrong_accuracy() -> dict:
    card = shipped_sidecar()
    card["metrics"]["tflite_test_accuracy"] = "99.6%"
    return card


@pytest.mark.parametrize("text", [
    '{"format_version": 1, "sha',  # cut off
    "[1, 2]",
    json.dumps(shipped_sidecar(metrics=None)),
    json.dumps(shipped_sidecar(metrics="good")),
    json.dumps(_wrong_accuracy()),
    json.dumps(shipped_sidecar(confidence={"temperature": 1.1})),
], ids=["truncated", "a list", "no metrics", "metrics a string", "accuracy a string",
        "confidence half there"])
def test_a_card_from_a_broken_sidecar_is_one_line(text: str, tmp_path: Path) -> None:
    broken = tmp_path / "digitnet_int8.json"
    broken.write_text(text)
    result = run_cli("card", str(broken), module="convert")
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr and str(broken) in result.stderr
    assert "python -m convert" in result.stderr  # how to make a good one
    assert not (tmp_path / "MODEL_CARD.md").exists()


@pytest.mark.parametrize(("card", "why"), [
    (None, "not valid JSON"),
    (shipped_sidecar(confidence={"temperature": 1.1}), "does not describe a calibrated model"),
    (shipped_sidecar(model_file="elsewhere_int8.tflite"), "does not describe a calibrated model"),
], ids=["truncated", "no threshold", "no model beside it"])
def test_first_look_refuses_a_broken_sidecar_before_the_work(card: dict | None, why: str,
                                                             tmp_path: Path) -> None:
    shutil.copy(REPO / "models" / "digitnet_int8.tflite", tmp_path)
    broken = tmp_path / "digitnet_int8.json"
    broken.write_text(json.dumps(card) if card else '{"format_version": 1, "sha')
    result = run_cli("first-look", str(REPO / "models" / "digitnet.keras"), str(broken),
                     module="convert")
    assert result.returncode == 1, result.stderr[-2000:]
    assert "Traceback" not in result.stderr and why in result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["digitnet_int8.json",
                                                          "digitnet_int8.tflite"]


def test_calibration_comes_from_the_runs_training_digits(trained: Path, mnist) -> None:
    import keras

    from convert.pipeline import held_out_split, source_metrics
    from train.split import run_metrics as training_metrics

    metrics = training_metrics(trained)
    train, val = held_out_split(mnist, source_metrics(trained))
    assert (len(train), len(val)) == (metrics["train_size"], metrics["val_size"])
    # The very digits the run validated on: the model scores on them what the run recorded.
    probs = keras.models.load_model(trained).predict(val.x, verbose=0)
    assert float((probs.argmax(1) == val.y).mean()) == pytest.approx(metrics["val_accuracy"],
                                                                     abs=1e-6)
    assert not {img.tobytes() for img in train.x} & {img.tobytes() for img in val.x}


def test_phases_behind_a_model_follow_warm_starts_to_the_right_checkpoint(tmp_path: Path) -> None:
    from train.run import training_phases

    def run(name: str, phases: list[dict]) -> Path:
        folder = tmp_path / name
        folder.mkdir()
        (folder / "metrics.json").write_text(json.dumps({"phases": phases}))
        return folder

    augmented = {"recipe": {"augment": True}, "init_from": None, "saved_as": "phase1.keras"}
    clean = {"recipe": {"augment": False}, "init_from": str(tmp_path / "a" / "phase1.keras"),
             "saved_as": "model.keras"}
    a = run("a", [augmented, clean])
    styled = {"recipe": {"styles": 0.5}, "init_from": str(a / "phase1.keras"),
              "saved_as": "model.keras"}
    b = run("b", [styled])
    assert training_phases(a / "phase1.keras") == [augmented]
    assert training_phases(a / "model.keras") == [augmented, clean]
    # b continued from a's first phase, not from a's final model.
    assert training_phases(b / "model.keras") == [augmented, styled]
    # A blend's record holds its tuned run's phases, which saved the same name elsewhere.
    blended = {"blend": {"weight": 0.5}, "init_from": str(a / "model.keras"),
               "saved_as": "model.keras"}
    c = run("c", [augmented, clean, blended])
    assert training_phases(c / "model.keras") == [augmented, clean, blended]


def test_the_model_card_lists_each_ensemble_member_s_training() -> None:
    from convert.card import _phases, _what

    assert _what({"phases": [{"recipe": {}}]}) == "A convolutional network that reads"

    trained = {"recipe": {"optimizer": "adam", "learning_rate": 0.001, "device_inputs": 600},
               "init_from": None, "epochs_run": 3, "train_seconds": 12.0}
    joined = {"ensemble": {"first": {"model": "models/digitnet.keras", "arch": "digitnet-flat",
                                     "phases": []},
                           "second": {"model": "runs/mini/model.keras", "arch": "digitnet-mini",
                                      "phases": [trained]}}}
    assert _what({"phases": [joined]}).startswith("Two convolutional networks in one model")
    text = "\n".join(_phases([joined]))
    assert "- Phase 1: two models joined into one that averages their logits" in text
    assert "  - the first, `models/digitnet.keras` (digitnet-flat):\n" \
           "    - its training is not on record." in text
    assert "  - the second, `runs/mini/model.keras` (digitnet-mini):\n" \
           "    - Phase 1, from scratch: adam at 0.001" in text
    assert "plus 600 training digits restyled" in text
    assert "distilled" not in text

    distilled = {**trained, "recipe": {**trained["recipe"], "teacher": "models/digitnet.keras"}}
    assert "the answers of the teacher `models/digitnet.keras` on the same inputs" in "\n".join(
        _phases([distilled]))


def test_calibration_size_flag_is_checked(trained: Path) -> None:
    result = run_cli(str(trained), "--calibration-samples", "0", module="convert")
    assert result.returncode == 2
    assert "argument --calibration-samples: '0' is not a whole number of at least 1" in (
        result.stderr)


def test_the_model_is_checked_before_mnist_is_looked_for(tmp_path: Path) -> None:
    # A file that exists but is no Keras model: the error names it, although MNIST is absent
    # too (no download is even tried).
    fake = tmp_path / "fake.keras"
    fake.write_text("not a model")
    absent_data = str(tmp_path / "no-mnist")
    result = run_cli(str(fake), "--data-dir", absent_data, module="convert")
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        f"python -m convert: error: {fake} is not a readable Keras model: a .keras file is the "
        "zip archive that python -m train (model.save) writes"]
    folder = run_cli(str(tmp_path), "--data-dir", absent_data, module="convert")
    assert "is a folder, not a model file" in folder.stderr
    broken = tmp_path / "broken.tflite"
    broken.write_bytes(b"not a flatbuffer")
    result = run_cli("evaluate", str(broken), "--data-dir", absent_data, module="convert")
    assert "not a loadable TFLite model" in result.stderr
    assert "no-mnist" not in result.stderr


def test_representative_draw_is_seeded(mnist) -> None:
    from convert.tflite import representative_data

    a = representative_data(mnist.train.x, seed=3, count=50)
    b = representative_data(mnist.train.x, seed=3, count=50)
    assert np.array_equal(a, b) and a.shape == (50, 28, 28, 1)


def test_compare_tabulates_the_chosen_architectures_against_their_published_figures(
        mnist_dir: Path, tmp_path: Path) -> None:
    doc = tmp_path / "REFERENCE.md"
    result = run_cli("compare", "--epochs", "1", "--limit", "600", "--arch", "mlp", "--arch",
                     "keras-convnet", "--data-dir", str(mnist_dir), "--out", str(tmp_path / "runs"),
                     "--doc", str(doc), module="convert")
    assert result.returncode == 0, result.stderr[-2000:]
    rows = json.loads((tmp_path / "runs" / "comparison.json").read_text())
    assert [r["arch"] for r in rows] == ["mlp", "keras-convnet"]
    assert [r["params"] for r in rows] == [101_770, 34_826]
    text = doc.read_text()
    assert "The architectures `mlp`, `keras-convnet` trained with one recipe" in text
    for row in rows:  # every measured figure is in the table, beside the published one
        assert f"| `{row['arch']}` | {row['params']:,} |" in text
        assert f"{row['int8_accuracy']:.2%}" in text
    assert "97–98% (the notebooks)" in text and "≈ 99.2% (Keras mnist_convnet.py)" in text


def test_fit_bias_recovers_the_biases_behind_the_labels() -> None:
    from convert.first_look import fit_bias

    rng = np.random.default_rng(0)
    partial = rng.normal(0, 2, (20_000, 10)).astype(np.float32)
    true_bias = np.linspace(-1, 1, 10).astype(np.float32)
    z = partial + true_bias
    p = np.exp(z - z.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    labels = np.array([rng.choice(10, p=row) for row in p])
    bias = fit_bias(partial, labels)
    # Biases are defined up to a constant shift (softmax ignores it).
    np.testing.assert_allclose(bias - bias.mean(), true_bias - true_bias.mean(), atol=0.1)


def test_the_first_look_threshold_is_the_lowest_that_changes_no_reading() -> None:
    from convert.first_look import choose_accept_at

    def probs(digits, confidences):
        out = np.full((len(digits), 10), 0.0, np.float32)
        for row, (d, c) in enumerate(zip(digits, confidences, strict=True)):
            out[row] = (1 - c) / 9
            out[row, d] = c
        return out

    full = probs([1, 2, 3, 4], [0.999, 0.97, 0.5, 0.99])
    # The first look disagrees on the third digit at 0.985: only thresholds above it are safe;
    # at 0.995 it would settle the fourth digit, which the full model flags below 0.991.
    first = probs([1, 2, 5, 4], [0.9999, 0.96, 0.985, 0.995])
    chosen = choose_accept_at(first, full, full_uncertain_below=0.991)
    assert chosen["accept_at"] == 0.998
    assert chosen["tried"]["0.995"] == {"settled_share": 0.5, "changed": 1}
    assert "0.95" not in chosen["tried"]  # not above the full model's own threshold
    with pytest.raises(ConversionError, match="at every threshold"):
        choose_accept_at(probs([7] * 4, [1.0] * 4), full, full_uncertain_below=0.9)


def test_first_look_of_a_joined_model_end_to_end(trained: Path, mnist_dir: Path,
                                                 tmp_path: Path) -> None:
    joined = tmp_path / "joined"
    result = run_cli("ensemble", str(trained), str(trained), "--out", str(joined),
                     "--data-dir", str(mnist_dir))
    assert result.returncode == 0, result.stderr
    result = run_cli(str(joined / "model.keras"), "--out", str(tmp_path), "--name", "pair",
                     "--allow-drop", "--data-dir", str(mnist_dir), module="convert")
    assert result.returncode == 0, result.stderr
    sidecar = tmp_path / "pair_int8.json"
    result = run_cli("first-look", str(joined / "model.keras"), str(sidecar),
                     "--data-dir", str(mnist_dir), module="convert")
    assert result.returncode == 0, result.stderr
    look = json.loads(sidecar.read_text())["first_look"]
    assert look["model_file"] == "pair_first_look_int8.tflite" and look["accept_at"] > 0.9
    member = json.loads((tmp_path / "pair_first_look_int8.json").read_text())
    assert member["sha256"] == look["sha256"] and member["confidence"]["temperature"] > 0
    from device.runtime import DigitModel

    model = DigitModel(tmp_path / "pair_int8.tflite")
    assert model.first_look is not None and model.first_look.sha256 == look["sha256"]
    # Clear one-line errors: no sidecar yet, and a model that is not a joined one.
    for args, message in (((str(joined / "model.keras"), str(tmp_path / "none.json")),
                           "convert the joined model first"),
                          ((str(trained), str(sidecar)), "is not a model joined by")):
        result = run_cli("first-look", *args, "--data-dir", str(mnist_dir), module="convert")
        assert result.returncode == 1 and message in result.stderr, result.stderr
        assert "Traceback" not in result.stderr
