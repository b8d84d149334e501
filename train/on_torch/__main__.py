"""`python -m train.on_torch`: the command line (`train.on_torch`'s docstring says what for)."""

from __future__ import annotations

import argparse
import importlib.util
import os
import sys
import time
from pathlib import Path

import numpy as np

from train import on_torch
from train.arguments import (
    add_recipe_arguments,
    add_split_arguments,
    positive_float,
    positive_int,
    share,
)
from train.data import DataError, load_mnist
from train.errors import ModelFileError
from train.on_torch import PROG
from train.recipe import ARCHITECTURES, DEFAULT_ARCH, Recipe
from train.split import training_split

USAGE = f"""\
KERAS_BACKEND=torch {PROG} [--arch NAME] [--teacher MODEL.keras] [--out DIR] [options]
       {PROG} device-inputs [--styles F] [--count N] --out FILE.npz"""


def train_parser() -> argparse.ArgumentParser:
    """`python -m train`'s recipe flags (the same names and defaults), and a time budget."""
    summary = (on_torch.__doc__ or "").split("\n\n")[0]
    p = argparse.ArgumentParser(prog=PROG, usage=USAGE, description=summary)
    p.add_argument("--arch", choices=list(ARCHITECTURES), default=DEFAULT_ARCH, metavar="NAME",
                   help=f"the architecture (default %(default)s): {', '.join(ARCHITECTURES)}")
    add_recipe_arguments(p)
    p.add_argument("--device-inputs-file", type=Path, metavar="FILE.npz",
                   help=f"those inputs, made by `{PROG} device-inputs` with the same styles, "
                   "count and seed (default: make them here, minutes of CPU)")
    p.add_argument("--phase-budget-s", type=positive_float, metavar="S",
                   help="start no augmented epoch after S seconds (the clean phase still runs)")
    add_split_arguments(p)
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
    add_split_arguments(p)  # the run's: its device inputs come from its training digits
    p.add_argument("--out", type=Path, required=True, metavar="FILE.npz",
                   help="the file to write, for the run's --device-inputs-file")
    return p


def _make_inputs(argv: list[str]) -> int:
    args = inputs_parser().parse_args(argv)
    out = args.out.with_suffix(".npz")  # numpy would add it to the name anyway
    try:  # before minutes of work, not after
        out.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DataError(f"cannot write {out} ({exc.strerror or exc})") from None
    train, _ = training_split(load_mnist(args.data_dir), args.val_split, args.seed,
                              args.limit)
    from train.on_torch.inputs import make_device_inputs

    started = time.perf_counter()
    made = make_device_inputs(train, args.styles, args.count, args.seed)
    try:
        np.savez_compressed(out, **made)
    except OSError as exc:
        raise DataError(f"cannot write {out} ({exc.strerror or exc})") from None
    print(f"{len(made['y']):,} device inputs in {time.perf_counter() - started:.0f} s: {out}")
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
        from train.on_torch.run import train_run

        metrics = train_run(args)
    except (DataError, ModelFileError) as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        # A run's models and reports are put in place together, once all are written.
        print(f"{PROG}: error: interrupted; --out has none of this run's files or all of them",
              file=sys.stderr)
        return 1
    print(f"{metrics['arch']}: validation {metrics['val_accuracy']:.4%}, "
          f"{metrics['train_seconds']:.0f} s training; model in {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
