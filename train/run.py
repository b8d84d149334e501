"""One training run, end to end: data → model → fit → evaluate → reports in --out."""

from __future__ import annotations

import platform
import time
from dataclasses import asdict
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from train import models
from train.augment import augment_dataset
from train.data import Mnist, Split
from train.errors import ModelFileError, check_keras_file
from train.fit import compile_model, fit_custom, fit_keras, strategy
from train.publish import published_together
from train.recipe import DEFAULT_ARCH, Recipe, clean_pass
from train.report import write_reports
from train.split import (
    check_teacher_split,
    limit,
    recorded_split,
    run_metrics,
    training_split,
)


def load_saved(path: Path) -> keras.Model:
    """A saved digit model: 28x28x1 digits in, 10 answers out; ModelFileError otherwise (a
    model of another shape failed later with Keras's own traceback)."""
    check_keras_file(path)
    try:
        # Without its optimizer: every caller predicts or compiles afresh (a warm start takes a
        # new optimizer), and restoring a custom loop's optimizer only printed a mismatch warning.
        model = keras.models.load_model(path, compile=False)
    except Exception as exc:  # Keras raises ValueError, OSError, zipfile errors...
        raise ModelFileError(f"{path} is not a readable Keras model ({exc})") from exc
    shapes = (tuple(model.input_shape[1:]), tuple(model.output_shape[1:]))
    if shapes != (models.INPUT_SHAPE, (models.NUM_CLASSES,)):
        raise ModelFileError(
            f"{path} maps {shapes[0]} to {shapes[1]}; a digit model reads 28x28x1 digits and "
            "answers 10 probabilities (a model saved by python -m train)")
    return model


def versions() -> dict[str, str]:
    return {
        "python": platform.python_version(),
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        "numpy": np.__version__,
    }


def make_deterministic(seed: int) -> None:
    keras.utils.set_random_seed(seed)
    tf.config.experimental.enable_op_determinism()


def augmented_samples(train: Split, recipe: Recipe, n: int = 40) -> tuple[np.ndarray, np.ndarray]:
    if not recipe.augment:
        return train.x[:n], train.y[:n]
    small = tf.data.Dataset.from_tensor_slices((train.x[:n], train.y[:n])).batch(n)
    x, y = next(iter(augment_dataset(small, recipe.seed, recipe.augment_strength)))
    return x.numpy(), y.numpy()


def load_teacher(path: Path, split: tuple[float, int, int | None]) -> keras.Model:
    """The teacher of a distillation run, refused unless it held out this run's validation
    digits: a teacher that trained on them would hand the student their labels."""
    teacher = load_saved(path)
    check_teacher_split(path, split)
    return teacher


def _fit_phase(train: Split, val: Split, *, arch: str | None, recipe: Recipe, loop: str,
               init_from: Path | None,
               teacher: keras.Model | None = None) -> tuple[keras.Model, dict[str, list], dict]:
    """One training phase from a fresh seed: build (or load) the model, compile, fit."""
    make_deterministic(recipe.seed)
    with strategy().scope():
        model = load_saved(init_from) if init_from else models.build(arch or DEFAULT_ARCH)
        saved = models.arch_of(model)
        if init_from and arch and saved and saved != arch:  # before any training time is spent
            raise ModelFileError(f"--arch {arch} was asked for, but {init_from} is a {saved}; "
                                 f"drop --arch (the saved model's is used) or pass --arch {saved}")
        compile_model(model, recipe)
    started = time.perf_counter()
    history = (fit_keras if loop == "fit" else fit_custom)(model, train, val, recipe, teacher)
    phase = {"recipe": asdict(recipe), "init_from": str(init_from) if init_from else None,
             "epochs_run": len(history["loss"]),
             "train_seconds": round(time.perf_counter() - started, 1)}
    return model, history, phase


def train_and_report(mnist: Mnist, *, arch: str | None, recipe: Recipe, out: Path,
                     val_split: float,
                     loop: str = "fit", limit_n: int | None = None,
                     init_from: Path | None = None) -> dict:
    """Train (from scratch, or warm-started from ``init_from``) and write every report.

    ``arch`` None: the default architecture, or the saved model's when warm-starting; the
    reports name the architecture that was actually trained.

    An augmented recipe ends with ``recipe.clean_epochs`` on undistorted digits at a low
    learning rate, warm-started from the first phase exactly as ``--init-from`` would.
    """
    teacher = (load_teacher(Path(recipe.teacher), (val_split, recipe.seed, limit_n))
               if recipe.teacher else None)
    train, val = training_split(mnist, val_split, recipe.seed, limit_n)
    test = limit(mnist.test, limit_n)
    # Everything is written in `staging` and put in `out` only once all of it is: a run stopped
    # in training or reporting (Ctrl-C, a crash) leaves the previous run's model beside its own
    # reports, not this run's model beside them.
    with published_together(out) as staging:
        model, history, phase = _fit_phase(train, val, arch=arch, recipe=recipe, loop=loop,
                                           init_from=init_from, teacher=teacher)
        phases = [phase]
        if recipe.augment and recipe.clean_epochs:
            phase["saved_as"] = "phase1.keras"
            model.save(staging / phase["saved_as"])
            model, clean_history, phase = _fit_phase(train, val, arch=arch, loop=loop,
                                                     recipe=clean_pass(recipe),
                                                     init_from=staging / "phase1.keras",
                                                     teacher=teacher)
            # Recorded where the checkpoint ends up: training_phases follows a warm start that
            # points into the run's own folder.
            phase["init_from"] = str(out / "phase1.keras")
            history = {k: v + clean_history.get(k, []) for k, v in history.items()}
            phases.append(phase)

        phase["saved_as"] = "model.keras"
        model.save(staging / phase["saved_as"])
        lines: list[str] = []
        model.summary(print_fn=lambda line, **_: lines.append(line))
        (staging / "summary.txt").write_text("\n".join(lines) + "\n")

        val_probs = model.predict(val.x, batch_size=1024, verbose=0)
        probs = model.predict(test.x, batch_size=1024, verbose=0)
        x_samples, y_samples = augmented_samples(train, recipe)
        return write_reports(
            staging,
            x_test=test.x,
            y_test=test.y,
            probs=probs,
            history=history,
            x_samples=x_samples,
            y_samples=y_samples,
            extra={
                "arch": models.arch_of(model) or arch or DEFAULT_ARCH,
                "init_from": str(init_from) if init_from else None,
                "params": int(model.count_params()),
                "train_seconds": round(sum(p["train_seconds"] for p in phases), 1),
                "epochs_run": len(history["loss"]),
                "phases": phases,
                "val_accuracy": round(float((val_probs.argmax(1) == val.y).mean()), 6),
                "val_split": val_split,
                "limit": limit_n,
                "train_size": len(train),
                "val_size": len(val),
                "test_size": len(test),
                "seed": recipe.seed,
                "loop": loop,
                "recipe": asdict(recipe),
                "data_source": mnist.source,
                "data_checksum": mnist.checksum,
                "versions": versions(),
            },
        )


def evaluate_saved(model_path: Path, mnist: Mnist, out: Path) -> dict:
    """Re-evaluate a saved .keras model on the full test set, writing the same reports."""
    model = load_saved(model_path)
    probs = model.predict(mnist.test.x, batch_size=1024, verbose=0)
    # Together: an evaluation stopped part way leaves the previous one's reports, not a mix.
    with published_together(out) as staging:
        return write_reports(
            staging, x_test=mnist.test.x, y_test=mnist.test.y, probs=probs, history=None,
            extra={"model": str(model_path), "params": int(model.count_params()),
                   "data_checksum": mnist.checksum, "versions": versions()},
        )


def report_made_model(model: keras.Model, mnist: Mnist, out: Path, *, arch: str | None,
                      like: dict, phases: list[dict]) -> dict:
    """Save a model made from trained ones (a blend, an ensemble) to ``out``/model.keras and
    write the training reports for it: validation on the split recorded in ``like`` (a source
    run's metrics), test for the final figures. ``phases`` is its whole history, whose times
    and epochs add up to the model's."""
    val_split, seed, limit_n = recorded_split(like)
    _, val = training_split(mnist, val_split, seed, limit_n)
    val_probs = model.predict(val.x, batch_size=1024, verbose=0)
    probs = model.predict(mnist.test.x, batch_size=1024, verbose=0)
    # As a training run's: the model goes into `out` with its reports, once all are written.
    with published_together(out) as staging:
        model.save(staging / "model.keras")
        return write_reports(
            staging, x_test=mnist.test.x, y_test=mnist.test.y, probs=probs, history=None,
            extra={
                "arch": arch, "params": int(model.count_params()),
                "phases": phases,
                "train_seconds": round(sum(p.get("train_seconds", 0.0) for p in phases), 1),
                "epochs_run": sum(p.get("epochs_run", 0) for p in phases),
                "val_accuracy": round(float((np.argmax(val_probs, 1) == val.y).mean()), 6),
                "val_split": val_split, "limit": limit_n, "seed": seed,
                "data_source": mnist.source, "data_checksum": mnist.checksum,
                "versions": versions(),
            },
        )


def training_phases(model_path: Path) -> list[dict]:
    """Every training phase behind a model, first to last, following warm starts."""
    metrics = run_metrics(model_path)
    if not metrics:
        return []
    own = metrics.get("phases") or [{k: metrics.get(k) for k in
                                     ("recipe", "init_from", "epochs_run", "train_seconds")}]
    # A run's folder may hold a checkpoint of an early phase (phase1.keras) beside its final
    # model: only the phases up to the last one that saved this file lie behind it (a blend's
    # record holds its tuned run's phases, which saved the same name in another folder).
    saved = [p.get("saved_as") for p in own]
    if model_path.name in saved:
        own = own[: len(saved) - saved[::-1].index(model_path.name)]
    origin = own[0].get("init_from")
    # A phase warm-started inside the same run points into that run's folder.
    if origin and Path(origin).parent != model_path.parent:
        return training_phases(Path(origin)) + own
    return own
