"""`python -m train.on_torch`: training with Keras on PyTorch, for a GPU machine without TensorFlow.

The training itself runs in `.venv-torch` (`make venv-torch`: PyTorch's CPU build beside Keras);
its model is then read here, under TensorFlow, as `python -m convert` reads it.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import REPO
from train.data import DataError, Split
from train.errors import ModelFileError
from train.on_torch.inputs import load_device_inputs, make_device_inputs
from train.recipe import Recipe
from train.split import check_teacher_split

TORCH_PYTHON = REPO / ".venv-torch" / "bin" / "python"


def on_torch(*args: str, python: Path | str = sys.executable,
             backend: str | None = "torch") -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "KERAS_BACKEND"}
    if backend:
        env["KERAS_BACKEND"] = backend
    return subprocess.run([str(python), "-m", "train.on_torch", *args], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=600, check=False)


def test_without_the_torch_backend_or_torch_it_says_what_to_do(mnist_dir: Path) -> None:
    result = on_torch("--limit", "100", "--data-dir", str(mnist_dir), backend=None)
    assert result.returncode == 2
    assert "set KERAS_BACKEND=torch" in result.stderr
    assert "Traceback" not in result.stderr
    if importlib.util.find_spec("torch") is None:  # as in this suite's venv (make test)
        result = on_torch("--limit", "100", "--data-dir", str(mnist_dir))
        assert result.returncode == 2
        assert "PyTorch is not installed" in result.stderr and "make venv-torch" in result.stderr
        assert "Traceback" not in result.stderr


def test_a_missing_teacher_or_inputs_file_is_one_line(torch_python: Path, mnist_dir: Path,
                                                      tmp_path: Path) -> None:
    for flags, says in ((("--teacher", str(tmp_path / "none.keras")), "none.keras"),
                        (("--device-inputs", "10", "--device-inputs-file",
                          str(tmp_path / "none.npz")), "none.npz")):
        result = on_torch("--limit", "300", *flags, "--data-dir", str(mnist_dir),
                          "--out", str(tmp_path / "run"), python=torch_python)
        assert result.returncode == 1, result.stderr
        assert says in result.stderr and "Traceback" not in result.stderr


def _digits(n: int) -> Split:
    """The first n training digits, as a --limit n run takes them."""
    from train.data import load_mnist

    train = load_mnist(os.environ.get("MNIST_DATA_DIR")).train
    return Split(train.x[:n], train.y[:n])


def test_device_inputs_that_cannot_be_written_is_one_line(mnist_dir: Path,
                                                          tmp_path: Path) -> None:
    (tmp_path / "a-file").write_text("")
    result = on_torch("device-inputs", "--count", "10", "--limit", "100",
                      "--data-dir", str(mnist_dir), "--out", str(tmp_path / "a-file" / "x.npz"))
    assert result.returncode == 1
    assert "cannot write" in result.stderr and "Traceback" not in result.stderr


def test_a_device_inputs_file_is_refused_for_another_recipe(tmp_path: Path) -> None:
    train = _digits(120)
    made = make_device_inputs(train, styles=0.5, count_=40, seed=42)
    assert made["x"].dtype == np.uint8 and len(made["x"]) == len(made["y"]) > 30
    path = tmp_path / "inputs.npz"
    np.savez_compressed(path, **made)

    same = Recipe(styles=0.5, device_inputs=40, seed=42)
    loaded = load_device_inputs(path, same, len(train))
    assert loaded.x.shape[1:] == (28, 28, 1) and 0.0 <= loaded.x.min() <= loaded.x.max() <= 1.0
    for other, size in ((Recipe(styles=0.0, device_inputs=40, seed=42), len(train)),
                        (Recipe(styles=0.5, device_inputs=60_000, seed=42), len(train)),
                        (Recipe(styles=0.5, device_inputs=40, seed=7), len(train)),
                        (same, len(train) + 1)):
        with pytest.raises(DataError, match="make them with"):
            load_device_inputs(path, other, size)
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(DataError, match="not a file made by"):
        load_device_inputs(tmp_path / "junk.npz", same, len(train))


def test_a_teacher_that_held_out_other_digits_is_refused(tmp_path: Path) -> None:
    teacher = tmp_path / "model.keras"
    check_teacher_split(teacher, (0.1, 42, None))  # no metrics.json: the training defaults
    (tmp_path / "metrics.json").write_text(json.dumps({"val_split": 0.1, "seed": 7}))
    with pytest.raises(ModelFileError, match="trained on another split"):
        check_teacher_split(teacher, (0.1, 42, None))
    check_teacher_split(teacher, (0.1, 7, None))


@pytest.fixture(scope="module")
def torch_python() -> Path:
    if not TORCH_PYTHON.is_file():
        pytest.skip("PyTorch is not installed here: `make venv-torch` puts its CPU build in "
                    ".venv-torch (.ci/run does where the wheel is on the machine's disk)")
    return TORCH_PYTHON


def test_a_run_on_torch_trains_distills_and_loads_under_tensorflow(
        torch_python: Path, mnist_dir: Path, tmp_path: Path) -> None:
    import keras

    from train.data import split_validation

    inputs = tmp_path / "inputs.npz"
    made = on_torch("device-inputs", "--limit", "900", "--count", "150", "--styles", "0.5",
                    "--data-dir", str(mnist_dir), "--out", str(inputs))
    assert made.returncode == 0, made.stderr
    common = ("--limit", "900", "--batch-size", "64", "--data-dir", str(mnist_dir))
    first = on_torch("--arch", "digitnet-mini", "--epochs", "3", "--clean-epochs", "1",
                     "--styles", "0.5", "--device-inputs", "150",
                     "--device-inputs-file", str(inputs), *common,
                     "--out", str(tmp_path / "first"), python=torch_python)
    assert first.returncode == 0, first.stderr
    # The student learns from the first run's answers (same split: same --limit and seed).
    student = on_torch("--arch", "digitnet-lite", "--epochs", "2", "--clean-epochs", "0",
                       "--teacher", str(tmp_path / "first" / "model.keras"), *common,
                       "--out", str(tmp_path / "student"), python=torch_python)
    assert student.returncode == 0, student.stderr

    # Run again into the same folder and stopped (Ctrl-C) once both models are saved, before
    # metrics.json: the folder holds the first run whole (the models were saved in place, so
    # a new model.keras stood beside the first run's metrics.json).
    kept = {p.name: p.read_bytes() for p in (tmp_path / "first").iterdir()}
    again = ["--arch", "digitnet-mini", "--epochs", "1", "--clean-epochs", "1", *common,
             "--out", str(tmp_path / "first")]
    stopped = subprocess.run([str(torch_python), "-c", (
        "import sys\n"
        "import train.on_torch.run as run\n"
        "from train.on_torch.__main__ import main\n"
        "recorded = run.asdict\n"
        "calls = []\n"
        "def stop_after_both_models(value):\n"
        "    calls.append(value)\n"
        "    if len(calls) == 3:  # phase 1 and phase 2 recorded: the metrics come next\n"
        "        raise KeyboardInterrupt\n"
        "    return recorded(value)\n"
        "run.asdict = stop_after_both_models\n"
        f"sys.exit(main({again!r}))\n")],
        cwd=REPO, env={**os.environ, "KERAS_BACKEND": "torch"}, capture_output=True, text=True,
        timeout=300, check=False)
    assert stopped.returncode == 1, stopped.stderr
    assert stopped.stderr.strip().splitlines()[-1].endswith(
        "interrupted; --out has none of this run's files or all of them"), stopped.stderr
    assert "Traceback" not in stopped.stderr
    assert {p.name: p.read_bytes() for p in (tmp_path / "first").iterdir()} == kept

    metrics = json.loads((tmp_path / "first" / "metrics.json").read_text())
    assert [p["saved_as"] for p in metrics["phases"]] == ["phase1.keras", "model.keras"]
    assert metrics["phases"][0]["recipe"]["device_inputs"] == 150
    assert metrics["versions"]["keras_backend"] == "torch"
    assert metrics["val_accuracy"] > 0.5  # 810 digits, 3 epochs: far above chance (0.1)
    taught = json.loads((tmp_path / "student" / "metrics.json").read_text())
    assert taught["recipe"]["teacher"] == str(tmp_path / "first" / "model.keras")
    assert [p["saved_as"] for p in taught["phases"]] == ["model.keras"]  # no clean phase

    # The student's loss is the distillation loss on [label, the teacher's ten probabilities].
    check = subprocess.run([str(torch_python), "-c", (
        "import keras, numpy as np\n"
        "from train import models\n"
        "from train.distill import DistillationLoss\n"
        "from train.on_torch.loop import PhaseSteps\n"
        "from train.recipe import Recipe\n"
        f"teacher = keras.models.load_model({str(tmp_path / 'first' / 'model.keras')!r})\n"
        "steps = PhaseSteps(models.build('digitnet-lite'), Recipe(teacher='t'), teacher)\n"
        "x = np.random.default_rng(0).random((5, 28, 28, 1), dtype=np.float32)\n"
        "t = keras.ops.convert_to_numpy(steps.targets(keras.ops.convert_to_tensor(x), "
        "keras.ops.convert_to_tensor(np.arange(5))))\n"
        "assert isinstance(steps.loss_fn, DistillationLoss)\n"
        "assert t.shape == (5, 11) and (t[:, 0] == np.arange(5)).all()\n"
        "assert np.allclose(t[:, 1:], teacher.predict(x, verbose=0), atol=1e-5)\n")],
        cwd=REPO, env={**os.environ, "KERAS_BACKEND": "torch"}, capture_output=True, text=True,
        timeout=300, check=False)
    assert check.returncode == 0, check.stderr

    # Saved on PyTorch, read on TensorFlow: the same validation digits read the same.
    _, val = split_validation(_digits(900), 0.1, 42)
    model = keras.models.load_model(tmp_path / "first" / "model.keras", compile=False)
    read = float((model.predict(val.x, verbose=0).argmax(1) == val.y).mean())
    assert read == pytest.approx(metrics["val_accuracy"], abs=1e-6)
