"""`python -m train.on_torch`: train on a GPU machine that has PyTorch but no TensorFlow.

Keras 3 runs the same architectures on its PyTorch backend, so a GPU rented for an hour (whose
image ships PyTorch, rarely TensorFlow) trains what `python -m train` trains on a CPU in a
fraction of the time:

    KERAS_BACKEND=torch python -m train.on_torch --arch digitnet-lite \\
        --teacher models/digitnet.keras --styles 0.5 --device-inputs 60000 --out runs/lite-gpu

The run uses `python -m train`'s split, continental styles, device inputs, augmentation ranges
and stroke change (`train.augment`), distillation loss (`train.distill`) and schedule (early
stopping, learning-rate halving, the clean phase: `train.schedule`), and saves model.keras,
phase1.keras and metrics.json the same way, so `python -m convert`, `train ensemble` and
`train blend` take its model like any run's (they load it under TensorFlow). It is not the CPU
run's twin: the rotation, zoom and shift are one affine warp drawn by PyTorch's generator, not
Keras's three layers drawing from tf.data's per-batch seeds.
It reports validation accuracy only; the test digits are measured where the model is chosen.

Device inputs take minutes of CPU (OpenCV, one process per core); `device-inputs` makes them
once, wherever there are cores, for runs that name the file with --device-inputs-file:

    python -m train.on_torch device-inputs --styles 0.5 --count 60000 --out inputs.npz
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import math
import os
import platform
import sys
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np

from train.arguments import DATA_DIR_HELP, count, positive_float, positive_int, share
from train.data import VAL_SPLIT, DataError, Split, load_mnist, split_validation
from train.errors import ModelFileError, check_keras_file
from train.recipe import ARCHITECTURES, DEFAULT_ARCH, Recipe, clean_pass
from train.styles import add_continental_styles

PROG = "python -m train.on_torch"


def limited(split: Split, n: int | None) -> Split:
    """The first ``n`` digits (all with None), as `python -m train --limit` takes them."""
    return split if not n else Split(split.x[:n], split.y[:n])


# --- device inputs, made once ---------------------------------------------------------------

def make_device_inputs(train: Split, styles: float, count_: int, seed: int) -> dict:
    """What `python -m train` adds to a phase with these settings, as uint8 for a file (the
    device hands the model its inputs in steps of 1/255 too)."""
    from train.device_inputs import device_inputs

    styled = add_continental_styles(train, styles, seed)
    x, y = device_inputs(styled.x, styled.y, count_, seed)
    return {"x": np.clip(np.rint(x[..., 0] * 255), 0, 255).astype(np.uint8), "y": y,
            "styles": styles, "count": count_, "seed": seed, "train_size": len(train)}


def load_device_inputs(path: Path, recipe: Recipe, train_size: int) -> Split:
    """The file's inputs, refused unless it was made with this phase's settings from a
    training split of this size (a --limit run draws from fewer digits)."""
    try:
        with np.load(path) as saved:
            made = {k: saved[k] for k in ("x", "y", "styles", "count", "seed", "train_size")}
    except (OSError, ValueError, KeyError) as exc:
        raise DataError(f"{path}: not a file made by `{PROG} device-inputs` ({exc})") from exc
    wanted = (recipe.styles, recipe.device_inputs, recipe.seed, train_size)
    found = (float(made["styles"]), int(made["count"]), int(made["seed"]),
             int(made["train_size"]))
    if found != wanted:
        raise DataError(f"{path} holds device inputs made with styles, count, seed and training "
                        f"digits {found}; this phase needs {wanted}: make them with "
                        f"`{PROG} device-inputs`")
    return Split(made["x"][..., None].astype(np.float32) / 255.0, made["y"].astype(np.int64))


def training_digits(train: Split, recipe: Recipe, inputs_file: Path | None) -> Split:
    """A phase's training digits: styled as the recipe says, plus its device inputs."""
    styled = add_continental_styles(train, recipe.styles, recipe.seed)
    if recipe.device_inputs <= 0:
        return styled
    if inputs_file is not None:
        extra = load_device_inputs(inputs_file, recipe, len(train))
    else:
        from train.device_inputs import device_inputs

        extra = Split(*device_inputs(styled.x, styled.y, recipe.device_inputs, recipe.seed))
    return Split(np.concatenate([styled.x, extra.x]), np.concatenate([styled.y, extra.y]))


# --- one phase on the GPU -------------------------------------------------------------------

class _PhaseSteps:
    """One phase's moving parts on the device: augmentation, the teacher's targets, a training
    step and an evaluation, as `train.fit`'s tf.data pipeline and Keras fit do them."""

    def __init__(self, model, recipe: Recipe, teacher) -> None:
        import keras

        from train.distill import DistillationLoss
        from train.schedule import make_optimizer

        self.model, self.recipe, self.teacher = model, recipe, teacher
        self.optimizer = make_optimizer(recipe.optimizer, recipe.learning_rate)
        self.optimizer.build(model.trainable_variables)
        self.loss_fn = (DistillationLoss() if teacher is not None
                        else keras.losses.SparseCategoricalCrossentropy())
        self.draws = None  # a torch.Generator on the model's device, made at the first batch

    def uniform(self, n: int, device, low: float = -1.0, high: float = 1.0):
        import torch

        if self.draws is None:
            self.draws = torch.Generator(device=device).manual_seed(self.recipe.seed)
        return low + (high - low) * torch.rand(n, device=device, generator=self.draws)

    def warped(self, x):
        """`train.augment.geometric`'s rotation, zoom and shift, drawn per digit and applied
        as one affine warp (bilinear, black outside). The three Keras layers, called eagerly on
        PyTorch, took 22 ms a batch of Python on this project's 2-core CPU, the warp 0.8 ms."""
        import torch
        from torch.nn import functional

        from train.augment import ROTATION_DEGREES, SHIFT, ZOOM

        n, s = x.shape[0], self.recipe.augment_strength
        angle = torch.deg2rad(self.uniform(n, x.device) * s * ROTATION_DEGREES)
        scale = 1.0 + self.uniform(n, x.device) * s * ZOOM
        shift = self.uniform(2 * n, x.device).reshape(n, 2) * s * SHIFT * 2  # [-1, 1] spans 2
        cos, sin = torch.cos(angle) * scale, torch.sin(angle) * scale
        theta = torch.stack([torch.stack([cos, -sin, shift[:, 0]], 1),
                             torch.stack([sin, cos, shift[:, 1]], 1)], 1)
        planes = x.permute(0, 3, 1, 2)
        grid = functional.affine_grid(theta, list(planes.shape), align_corners=False)
        warped = functional.grid_sample(planes, grid, mode="bilinear", padding_mode="zeros",
                               align_corners=False)
        return warped.permute(0, 2, 3, 1)

    def augmented(self, x):
        from keras import ops

        from train.augment import change_strokes

        if not self.recipe.augment:
            return x
        choice = self.uniform(x.shape[0], x.device, 0.0, 1.0).reshape(-1, 1, 1, 1)
        x = change_strokes(self.warped(x), choice, 0.2 * self.recipe.augment_strength)
        return ops.clip(x, 0.0, 1.0)

    def targets(self, x, y):
        from train.distill import pack_targets

        return y if self.teacher is None else pack_targets(y, self.teacher(x, training=False))

    def train_on(self, x, y):
        """One optimizer step on a batch; its mean loss and how many it read right, as tensors
        on the device (reading them back each step would wait for the GPU every step)."""
        import torch
        from keras import ops

        with torch.no_grad():
            x = self.augmented(x)
            y_true = self.targets(x, y)
        self.model.zero_grad()
        probs = self.model(x, training=True)
        loss = self.loss_fn(y_true, probs)
        loss.backward()
        grads = [v.value.grad for v in self.model.trainable_variables]
        with torch.no_grad():
            self.optimizer.apply(grads, self.model.trainable_variables)
        return loss.detach(), ops.sum(ops.argmax(probs, axis=1) == y)

    def evaluate(self, split: Split) -> tuple[float, float]:
        import torch
        from keras import ops

        total = correct = 0.0
        with torch.no_grad():
            for i in range(0, len(split), 1024):
                x = ops.convert_to_tensor(split.x[i : i + 1024])
                y = ops.convert_to_tensor(split.y[i : i + 1024])
                probs = self.model(x, training=False)
                total += float(self.loss_fn(self.targets(x, y), probs)) * len(split.y[i : i + 1024])
                correct += float(ops.sum(ops.argmax(probs, axis=1) == y))
        return total / len(split), correct / len(split)


def fit_phase(model, train: Split, val: Split, recipe: Recipe, *, teacher=None,
              budget_s: float | None = None) -> dict[str, list]:
    """Train ``model`` in place by ``recipe``; return its history. Starts no epoch after
    ``budget_s`` seconds; the best weights on validation loss are kept, as in `train.fit`."""
    import keras
    import torch
    from keras import ops

    from train.schedule import Plateau, match_batchnorm_to_run

    keras.utils.set_random_seed(recipe.seed)
    x_all, y_all = ops.convert_to_tensor(train.x), ops.convert_to_tensor(train.y)
    match_batchnorm_to_run(model, math.ceil(len(train) / recipe.batch_size))
    steps = _PhaseSteps(model, recipe, teacher)
    order_of = torch.Generator().manual_seed(recipe.seed)
    history: dict[str, list] = {k: [] for k in ("loss", "accuracy", "val_loss", "val_accuracy",
                                                 "lr")}
    plateau, started = Plateau(recipe), time.perf_counter()
    for epoch in range(recipe.epochs):
        if budget_s is not None and time.perf_counter() - started > budget_s:
            print(f"  time budget of {budget_s:.0f} s spent: no epoch {epoch + 1}", flush=True)
            break
        lr = float(steps.optimizer.learning_rate)
        order = torch.randperm(len(train), generator=order_of).to(x_all.device)
        total = correct = 0.0
        for i in range(0, len(train), recipe.batch_size):
            batch = order[i : i + recipe.batch_size]
            loss, right = steps.train_on(x_all[batch], y_all[batch])
            total, correct = total + loss * len(batch), correct + right
        row = (float(total) / len(train), float(correct) / len(train), *steps.evaluate(val), lr)
        for key, value in zip(history, row, strict=True):
            history[key].append(value)
        print(f"epoch {epoch + 1}/{recipe.epochs}: loss {row[0]:.4f} accuracy {row[1]:.4f} "
              f"val_loss {row[2]:.4f} val_accuracy {row[3]:.4f} lr {lr:.2e} "
              f"({time.perf_counter() - started:.0f} s)", flush=True)
        if plateau.update(row[2], model, steps.optimizer):
            break
    if plateau.best_weights is not None:
        model.set_weights(plateau.best_weights)
    return history


def check_teacher_split(teacher: Path, split: tuple[float, int, int | None]) -> None:
    """Refuse a teacher that held out other validation digits (its answers would leak this
    run's); a model without its run's metrics.json counts as trained on the defaults, as
    `python -m train --teacher` takes it."""
    record = teacher.parent / "metrics.json"
    saved = json.loads(record.read_text()) if record.is_file() else {}
    held_out = (saved.get("val_split", VAL_SPLIT), saved.get("seed", Recipe().seed),
                saved.get("limit"))
    if held_out != split:
        raise ModelFileError(f"the teacher {teacher} held out other validation digits "
                             f"(validation share, seed, limit {held_out}); this run holds out "
                             f"{split}: train with the teacher's --seed and --limit")


def versions() -> dict[str, str]:
    import keras
    import torch

    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none"
    return {"python": platform.python_version(), "keras": keras.__version__,
            "keras_backend": keras.backend.backend(), "torch": torch.__version__,
            "numpy": np.__version__, "gpu": gpu}


def train_run(args: argparse.Namespace) -> dict:
    """Both phases of `python -m train`'s recipe, saved and recorded as it saves them."""
    import keras
    import torch

    from train import models

    recipe = Recipe(epochs=args.epochs, batch_size=args.batch_size,
                    learning_rate=args.learning_rate, seed=args.seed, patience=args.patience,
                    clean_epochs=args.clean_epochs, styles=args.styles,
                    clean_styles=args.clean_styles, device_inputs=args.device_inputs,
                    teacher=str(args.teacher) if args.teacher else None)
    mnist = load_mnist(args.data_dir)
    train, val = split_validation(limited(mnist.train, args.limit), VAL_SPLIT, recipe.seed)
    teacher = None
    if args.teacher:
        check_keras_file(args.teacher)
        check_teacher_split(args.teacher, (VAL_SPLIT, recipe.seed, args.limit))
        teacher = keras.models.load_model(args.teacher, compile=False)
    args.out.mkdir(parents=True, exist_ok=True)
    model = models.build(args.arch)
    phases, history = [], {}
    for name, phase_recipe, budget in (("phase1.keras", recipe, args.phase_budget_s),
                                       ("model.keras", clean_pass(recipe), None)):
        if phase_recipe.epochs == 0:
            continue
        digits = training_digits(train, phase_recipe, args.device_inputs_file)
        print(f"{name}: {len(digits):,} training digits, {len(val):,} validation, on "
              f"{versions()['gpu']}", flush=True)
        started = time.perf_counter()
        phase_history = fit_phase(model, digits, val, phase_recipe, teacher=teacher,
                                  budget_s=budget)
        history = {k: history.get(k, []) + v for k, v in phase_history.items()}
        model.save(args.out / name)
        phases.append({"recipe": asdict(phase_recipe), "init_from": None,
                       "epochs_run": len(phase_history["loss"]), "saved_as": name,
                       "train_seconds": round(time.perf_counter() - started, 1)})
        if name == "model.keras":
            phases[-1]["init_from"] = str(args.out / "phase1.keras")
    if phases[-1]["saved_as"] != "model.keras":
        model.save(args.out / "model.keras")
        phases[-1]["saved_as"] = "model.keras"
    with torch.no_grad():
        val_probs = model.predict(val.x, batch_size=1024, verbose=0)
    metrics = {
        "arch": args.arch, "params": int(model.count_params()), "phases": phases,
        "train_seconds": round(sum(p["train_seconds"] for p in phases), 1),
        "epochs_run": len(history.get("loss", [])),
        "val_accuracy": round(float((val_probs.argmax(1) == val.y).mean()), 6),
        "val_split": VAL_SPLIT, "limit": args.limit, "seed": recipe.seed, "recipe": asdict(recipe),
        "trained_by": PROG, "device_inputs_file": str(args.device_inputs_file or ""),
        "data_source": mnist.source, "data_checksum": mnist.checksum, "versions": versions(),
    }
    (args.out / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    (args.out / "history.json").write_text(json.dumps(history, indent=2) + "\n")
    return metrics


# --- command line ---------------------------------------------------------------------------

USAGE = f"""\
KERAS_BACKEND=torch {PROG} [--arch NAME] [--teacher MODEL.keras] [--out DIR] [options]
       {PROG} device-inputs [--styles F] [--count N] --out FILE.npz"""


def train_parser() -> argparse.ArgumentParser:
    """`python -m train`'s recipe flags (the same names and defaults), and a time budget."""
    defaults = Recipe()
    p = argparse.ArgumentParser(prog=PROG, usage=USAGE, description=__doc__.split("\n\n")[0])
    p.add_argument("--arch", choices=list(ARCHITECTURES), default=DEFAULT_ARCH, metavar="NAME",
                   help=f"the architecture (default %(default)s): {', '.join(ARCHITECTURES)}")
    p.add_argument("--epochs", type=positive_int, default=defaults.epochs, metavar="N",
                   help="most epochs of the augmented phase; early stopping or the time budget "
                   "may end it sooner (default %(default)s)")
    p.add_argument("--batch-size", type=positive_int, default=defaults.batch_size, metavar="N",
                   help="digits per training step (default %(default)s)")
    p.add_argument("--learning-rate", type=positive_float, default=defaults.learning_rate,
                   metavar="LR", help="the augmented phase's starting rate (default %(default)s)")
    p.add_argument("--seed", type=int, default=defaults.seed, metavar="N",
                   help="seed of the split, shuffling, augmentation and initial weights "
                   "(default %(default)s)")
    p.add_argument("--patience", type=positive_int, default=defaults.patience, metavar="N",
                   help="early-stopping patience in epochs on validation loss "
                   "(default %(default)s)")
    p.add_argument("--clean-epochs", type=count, default=defaults.clean_epochs, metavar="N",
                   help="epochs on undistorted digits at a low rate after the augmented phase "
                   "(default %(default)s; 0 turns the phase off)")
    p.add_argument("--styles", type=share, default=defaults.styles, metavar="FRACTION",
                   help="share of the 7s crossed and of the 1s flagged in the augmented phase "
                   "(default %(default)s)")
    p.add_argument("--clean-styles", type=share, default=defaults.clean_styles,
                   metavar="FRACTION", help="the same share in the clean phase "
                   "(default %(default)s)")
    p.add_argument("--device-inputs", type=count, default=defaults.device_inputs, metavar="N",
                   help="add N training digits as the device cuts them out of pictures "
                   "(default %(default)s)")
    p.add_argument("--device-inputs-file", type=Path, metavar="FILE.npz",
                   help=f"those inputs, made by `{PROG} device-inputs` with the same styles, "
                   "count and seed (default: make them here, minutes of CPU)")
    p.add_argument("--teacher", type=Path, metavar="MODEL.keras",
                   help="distillation: learn this trained model's answers as well as the labels; "
                   "it must have held out the same validation digits")
    p.add_argument("--phase-budget-s", type=positive_float, metavar="S",
                   help="start no augmented epoch after S seconds (the clean phase still runs)")
    p.add_argument("--limit", type=positive_int, metavar="N",
                   help="use only the first N training digits (quick runs)")
    p.add_argument("--data-dir", metavar="DIR", help=DATA_DIR_HELP)
    p.add_argument("--out", type=Path, default=Path("runs/on-torch"), metavar="DIR",
                   help="folder for model.keras, phase1.keras, metrics.json and history.json "
                   "(default %(default)s)")
    return p


def inputs_parser() -> argparse.ArgumentParser:
    defaults = Recipe()
    p = argparse.ArgumentParser(prog=f"{PROG} device-inputs",
                                description="Make a training run's device inputs once, to a file")
    p.add_argument("--styles", type=share, default=defaults.styles, metavar="FRACTION",
                   help="the run's --styles: share of 7s crossed and 1s flagged first "
                   "(default %(default)s)")
    p.add_argument("--count", type=positive_int, default=60_000, metavar="N",
                   help="the run's --device-inputs (default %(default)s)")
    p.add_argument("--seed", type=int, default=defaults.seed, metavar="N",
                   help="the run's --seed (default %(default)s)")
    p.add_argument("--limit", type=positive_int, metavar="N",
                   help="draw from the first N training digits, as a --limit run does")
    p.add_argument("--data-dir", metavar="DIR", help=DATA_DIR_HELP)
    p.add_argument("--out", type=Path, required=True, metavar="FILE.npz",
                   help="the file to write, for the run's --device-inputs-file")
    return p


def _make_inputs(argv: list[str]) -> int:
    args = inputs_parser().parse_args(argv)
    train, _ = split_validation(limited(load_mnist(args.data_dir).train, args.limit), VAL_SPLIT,
                                args.seed)
    started = time.perf_counter()
    made = make_device_inputs(train, args.styles, args.count, args.seed)
    np.savez_compressed(args.out, **made)
    print(f"{len(made['y']):,} device inputs in {time.perf_counter() - started:.0f} s: {args.out}")
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    try:
        if argv[:1] == ["device-inputs"]:
            return _make_inputs(argv[1:])
        args = train_parser().parse_args(argv)
        if os.environ.get("KERAS_BACKEND") != "torch":
            print(f"{PROG}: error: set KERAS_BACKEND=torch (this trainer runs Keras on PyTorch; "
                  "`python -m train` trains on TensorFlow)", file=sys.stderr)
            return 2
        if importlib.util.find_spec("torch") is None:
            print(f"{PROG}: error: PyTorch is not installed in this Python: `pip install torch`, "
                  "or `make venv-torch` and run .venv-torch/bin/python", file=sys.stderr)
            return 2
        metrics = train_run(args)
    except (DataError, ModelFileError) as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"{PROG}: error: interrupted", file=sys.stderr)
        return 1
    print(f"{metrics['arch']}: validation {metrics['val_accuracy']:.4%}, "
          f"{metrics['train_seconds']:.0f} s training; model in {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
