"""``python -m train``: train an architecture and write its reports; ``evaluate`` re-checks one.

    python -m train --arch digitnet-flat --out runs/default
    python -m train evaluate runs/default/model.keras
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from train.data import VAL_SPLIT, DataError
from train.errors import ModelFileError
from train.fit import OPTIMIZERS, Recipe

# Keep TensorFlow's C++ start-up chatter out of a user's terminal.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def _positive_int(text: str) -> int:
    value = int(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return value


def _fraction(text: str, *, ends_allowed: bool = False) -> float:
    value = float(text)
    inside = 0.0 <= value <= 1.0 if ends_allowed else 0.0 < value < 1.0
    if not inside:
        ends = "" if ends_allowed else " (exclusive)"
        raise argparse.ArgumentTypeError(f"must be between 0 and 1{ends}, got {text}")
    return value


def _share(text: str) -> float:
    return _fraction(text, ends_allowed=True)


def _positive_float(text: str) -> float:
    value = float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be positive, got {text}")
    return value


def train_parser() -> argparse.ArgumentParser:
    from train.models import DEFAULT_ARCH, REGISTRY

    defaults = Recipe()
    p = argparse.ArgumentParser(prog="python -m train", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--arch", choices=list(REGISTRY), default=DEFAULT_ARCH)
    p.add_argument("--epochs", type=_positive_int, default=defaults.epochs)
    p.add_argument("--batch-size", type=_positive_int, default=defaults.batch_size)
    p.add_argument("--optimizer", choices=OPTIMIZERS, default=defaults.optimizer)
    p.add_argument("--learning-rate", type=_positive_float, default=defaults.learning_rate)
    p.add_argument("--val-split", type=_fraction, default=VAL_SPLIT,
                   help="fraction of the training set held out for validation (default 0.1)")
    p.add_argument("--seed", type=int, default=defaults.seed)
    p.add_argument("--augment", action=argparse.BooleanOptionalAction, default=defaults.augment,
                   help="rotations, shifts, scale and stroke-thickness changes (default on)")
    p.add_argument("--augment-strength", type=_positive_float, default=defaults.augment_strength,
                   help="scale of the augmentation ranges (default %(default)s)")
    p.add_argument("--lr-patience", type=_positive_int, default=defaults.lr_patience,
                   help="epochs without val_loss improvement before halving the learning rate")
    p.add_argument("--clean-epochs", type=int, default=defaults.clean_epochs,
                   help="after augmented training, epochs on undistorted digits at a low "
                   "learning rate (default %(default)s; 0 turns the phase off)")
    p.add_argument("--styles", type=_share, default=defaults.styles,
                   help="share of the 7s drawn crossed and of the 1s with a long flag, the "
                   "continental styles MNIST lacks, in the first phase (default %(default)s)")
    p.add_argument("--clean-styles", type=_share, default=defaults.clean_styles,
                   help="the same share in the clean phase (default %(default)s)")
    p.add_argument("--device-inputs", type=int, default=defaults.device_inputs, metavar="N",
                   help="add N training digits restyled, drawn into pictures (files, crops, "
                   "drawings, photos) and cut out again by the device's preprocessing "
                   "(default %(default)s)")
    p.add_argument("--patience", type=_positive_int, default=defaults.patience,
                   help="early-stopping patience in epochs on validation loss")
    p.add_argument("--limit", type=_positive_int, default=None,
                   help="use only the first N training and N test digits (quick runs)")
    p.add_argument("--loop", choices=("fit", "custom"), default="fit",
                   help="Keras fit, or an explicit tf.GradientTape loop")
    p.add_argument("--init-from", type=Path, metavar="MODEL.keras",
                   help="warm start: continue from a saved model of the same --arch "
                   "(e.g. a final low-rate pass without augmentation)")
    p.add_argument("--data-dir", help="folder with MNIST IDX files or mnist.npz "
                   "(default: $MNIST_DATA_DIR, then Keras's cache, then download)")
    p.add_argument("--out", type=Path, default=Path("runs/latest"))
    return p


def evaluate_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m train evaluate",
                                description="Re-evaluate a saved .keras model on MNIST's test set.")
    p.add_argument("model", type=Path)
    p.add_argument("--data-dir")
    p.add_argument("--out", type=Path, help="report folder (default: beside the model)")
    return p


def _evaluate(argv: list[str]) -> int:
    args = evaluate_parser().parse_args(argv)
    from train.data import load_mnist
    from train.run import evaluate_saved

    mnist = load_mnist(args.data_dir)
    out = args.out or args.model.parent / "evaluation"
    metrics = evaluate_saved(args.model, mnist, out)
    print(f"test accuracy {metrics['test_accuracy']:.4%} ({metrics['errors']} errors); "
          f"reports in {out}")
    return 0


def _train(argv: list[str]) -> int:
    args = train_parser().parse_args(argv)
    from train.data import load_mnist
    from train.report import format_per_class
    from train.run import train_and_report

    mnist = load_mnist(args.data_dir)
    print(f"MNIST from {mnist.source}")
    recipe = Recipe(epochs=args.epochs, batch_size=args.batch_size, optimizer=args.optimizer,
                    learning_rate=args.learning_rate, augment=args.augment,
                    augment_strength=args.augment_strength, seed=args.seed,
                    patience=args.patience, lr_patience=args.lr_patience,
                    clean_epochs=args.clean_epochs, styles=args.styles,
                    clean_styles=args.clean_styles, device_inputs=args.device_inputs)
    metrics = train_and_report(mnist, arch=args.arch, recipe=recipe, out=args.out,
                               val_split=args.val_split, loop=args.loop, limit_n=args.limit,
                               init_from=args.init_from)
    print(format_per_class(metrics["per_class"]))
    print(f"{args.arch}: test accuracy {metrics['test_accuracy']:.4%} "
          f"(validation {metrics['val_accuracy']:.4%}), {metrics['params']:,} parameters, "
          f"{metrics['train_seconds']:.0f} s training; reports in {args.out}")
    return 0


def _fail(message: str) -> int:
    print(f"error: {message}", file=sys.stderr)
    return 1


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    try:
        if argv[:1] == ["evaluate"]:
            return _evaluate(argv[1:])
        return _train(argv)
    except (DataError, ModelFileError) as exc:
        return _fail(str(exc))
    except KeyboardInterrupt:
        return _fail("interrupted")


if __name__ == "__main__":
    sys.exit(main())
