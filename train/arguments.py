"""Argument types for `python -m train` and `python -m convert`, and the training recipe's flags
that `python -m train` and `python -m train.on_torch` share.

Each raises argparse.ArgumentTypeError with a sentence about the value, so a wrong flag reads
"argument --epochs: 'abc' is not a whole number of at least 1" instead of naming a function.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from train.data import VAL_SPLIT
from train.recipe import OPTIMIZERS, Recipe

DATA_DIR_HELP = ("folder with the MNIST IDX files or mnist.npz (default: $MNIST_DATA_DIR, then "
                 "Keras's cache ~/.keras/datasets/mnist.npz, then a download)")


def _number(text: str, kind: type[int] | type[float], what: str) -> int | float:
    try:
        return kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not {what}") from None


def positive_int(text: str) -> int:
    value = _number(text, int, "a whole number of at least 1")
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of at least 1")
    return int(value)


def count(text: str) -> int:
    """A whole number of at least 0 (0 turns something off)."""
    value = _number(text, int, "a whole number of at least 0")
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of at least 0")
    return int(value)


def positive_float(text: str) -> float:
    value = _number(text, float, "a number")
    if not value > 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number above 0")
    return float(value)


def fraction(text: str) -> float:
    """Strictly between 0 and 1, e.g. a validation split."""
    value = _number(text, float, "a number between 0 and 1")
    if not 0.0 < value < 1.0:
        raise argparse.ArgumentTypeError(f"{text!r} is not between 0 and 1 (exclusive)")
    return float(value)


def share(text: str) -> float:
    """From 0 to 1 inclusive, e.g. the share of digits restyled or an accuracy floor."""
    value = _number(text, float, "a number from 0 to 1")
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"{text!r} is not between 0 and 1")
    return float(value)


def add_recipe_arguments(p: argparse.ArgumentParser) -> None:
    """The flags of a training `Recipe`, with its defaults (`recipe_from` reads them back)."""
    defaults = Recipe()
    p.add_argument("--epochs", metavar="N", type=positive_int, default=defaults.epochs,
                   help="most epochs of the first (augmented) phase; early stopping may end it "
                   "sooner (default %(default)s)")
    p.add_argument("--batch-size", metavar="N", type=positive_int, default=defaults.batch_size,
                   help="digits per training step (default %(default)s)")
    p.add_argument("--optimizer", choices=OPTIMIZERS, default=defaults.optimizer,
                   help="default %(default)s")
    p.add_argument("--learning-rate", metavar="LR", type=positive_float,
                   default=defaults.learning_rate,
                   help="the first phase's starting learning rate (default %(default)s)")
    p.add_argument("--seed", metavar="N", type=int, default=defaults.seed,
                   help="seed of the split, shuffling, augmentation and initial weights; the "
                   "same seed and data give the same weights (default %(default)s)")
    p.add_argument("--augment", action=argparse.BooleanOptionalAction, default=defaults.augment,
                   help="rotations, shifts, scale and stroke-thickness changes (default on)")
    p.add_argument("--augment-strength", metavar="X", type=positive_float,
                   default=defaults.augment_strength,
                   help="scale of the augmentation ranges (default %(default)s)")
    p.add_argument("--lr-patience", metavar="N", type=positive_int, default=defaults.lr_patience,
                   help="epochs without val_loss improvement before halving the learning rate "
                   "(default %(default)s)")
    p.add_argument("--clean-epochs", metavar="N", type=count, default=defaults.clean_epochs,
                   help="after augmented training, epochs on undistorted digits at a low "
                   "learning rate (default %(default)s; 0 turns the phase off)")
    p.add_argument("--styles", metavar="FRACTION", type=share, default=defaults.styles,
                   help="share of the 7s drawn crossed and of the 1s with a long flag, the "
                   "continental styles MNIST lacks, in the first phase (default %(default)s)")
    p.add_argument("--clean-styles", metavar="FRACTION", type=share, default=defaults.clean_styles,
                   help="the same share in the clean phase (default %(default)s)")
    p.add_argument("--device-inputs", type=count, default=defaults.device_inputs, metavar="N",
                   help="add N training digits restyled, drawn into pictures (files, crops, "
                   "drawings, photos) and cut out again by the device's preprocessing "
                   "(default %(default)s)")
    p.add_argument("--patience", metavar="N", type=positive_int, default=defaults.patience,
                   help="early-stopping patience in epochs on validation loss "
                   "(default %(default)s)")
    p.add_argument("--teacher", type=Path, metavar="MODEL.keras",
                   help="distillation: learn this trained model's answers as well as the labels "
                   "(train.distill); it must have held out the same validation digits")


def add_split_arguments(p: argparse.ArgumentParser) -> None:
    """Which training digits a run holds out and draws from (train.split.training_split), and
    where MNIST is: a teacher, a run and its device inputs must agree on the first two."""
    p.add_argument("--val-split", metavar="FRACTION", type=fraction, default=VAL_SPLIT,
                   help="fraction of the training set held out for validation (default 0.1)")
    p.add_argument("--limit", type=positive_int, default=None, metavar="N",
                   help="use only the first N training digits, and N test digits where the "
                   "run reports test figures (quick runs)")
    p.add_argument("--data-dir", metavar="DIR", help=DATA_DIR_HELP)


def recipe_from(args: argparse.Namespace) -> Recipe:
    return Recipe(epochs=args.epochs, batch_size=args.batch_size, optimizer=args.optimizer,
                  learning_rate=args.learning_rate, augment=args.augment,
                  augment_strength=args.augment_strength, seed=args.seed,
                  patience=args.patience, lr_patience=args.lr_patience,
                  clean_epochs=args.clean_epochs, styles=args.styles,
                  clean_styles=args.clean_styles, device_inputs=args.device_inputs,
                  teacher=str(args.teacher) if args.teacher else None)
