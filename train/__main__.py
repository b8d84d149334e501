"""`python -m train`: train an architecture and write its reports; `evaluate` re-checks one,
`blend` mixes a model with its fine-tuned self, `ensemble` joins two models into one."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from train.arguments import (
    DATA_DIR_HELP,
    add_recipe_arguments,
    add_split_arguments,
    recipe_from,
    share,
)
from train.data import DataError
from train.errors import ModelFileError, OutputError, check_keras_file, writable_folder
from train.recipe import ARCHITECTURES, DEFAULT_ARCH

# Keep TensorFlow's C++ start-up chatter out of a user's terminal.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

PROG = "python -m train"
USAGE = f"""\
{PROG} [--arch NAME] [--epochs N] [--limit N] [--out DIR] [options]
       {PROG} evaluate MODEL.keras [--data-dir DIR] [--out DIR]
       {PROG} blend BASE.keras TUNED.keras [--weight W] [--out DIR]
       {PROG} ensemble FIRST.keras SECOND.keras [--out DIR]"""
# Below this test accuracy a run is useless (chance is 10%); it fails unless told otherwise.
SANITY_FLOOR = 0.5


def train_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog=PROG, usage=USAGE, formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Train a digit classifier on MNIST and write its reports to --out.\n"
        f"'{PROG} evaluate MODEL.keras' re-evaluates a saved model on the 10,000 test digits.",
        epilog="architectures:\n" + "\n".join(
            f"  {name:<17} {text}" for name, text in ARCHITECTURES.items()),
    )
    p.add_argument("--arch", choices=list(ARCHITECTURES), metavar="NAME",
                   help=f"the architecture, one of those listed below (default {DEFAULT_ARCH}; "
                   "with --init-from, the saved model's)")
    add_recipe_arguments(p)
    add_split_arguments(p)
    p.add_argument("--loop", choices=("fit", "custom"), default="fit",
                   help="Keras fit, or an explicit tf.GradientTape loop (default %(default)s)")
    p.add_argument("--init-from", type=Path, metavar="MODEL.keras",
                   help="warm start: continue from a saved model, of its own architecture "
                   "(e.g. a final low-rate pass without augmentation); --arch, if given, "
                   "must name the same one")
    p.add_argument("--min-test-accuracy", type=share, default=SANITY_FLOOR, metavar="FRACTION",
                   help="a run whose test accuracy ends below this is reported as a failure "
                   "(exit status 1; its reports are still written); 0 accepts any "
                   "(default %(default)s)")
    p.add_argument("--out", type=Path, default=Path("runs/latest"), metavar="DIR",
                   help="folder for the model and its reports, created if needed "
                   "(default %(default)s)")
    return p


def evaluate_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=f"{PROG} evaluate",
                                description="Re-evaluate a saved .keras model on MNIST's "
                                "10,000 test digits and write the same reports as training.")
    p.add_argument("model", type=Path, metavar="MODEL.keras",
                   help="a model saved by python -m train (e.g. runs/latest/model.keras)")
    p.add_argument("--data-dir", metavar="DIR", help=DATA_DIR_HELP)
    p.add_argument("--out", type=Path, metavar="DIR",
                   help="report folder (default: 'evaluation' beside the model)")
    return p


def blend_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=f"{PROG} blend",
                                description="Blend a model with a fine-tuned copy of itself in "
                                "weight space (WiSE-FT) and write the same reports as training.")
    p.add_argument("base", type=Path, metavar="BASE.keras", help="the model before fine-tuning")
    p.add_argument("tuned", type=Path, metavar="TUNED.keras",
                   help="the fine-tuned model (its run's metrics.json gives the validation split)")
    p.add_argument("--weight", type=share, default=0.5, metavar="W",
                   help="share of the tuned weights, 0..1 (default %(default)s)")
    p.add_argument("--data-dir", metavar="DIR", help=DATA_DIR_HELP)
    p.add_argument("--out", type=Path, default=Path("runs/blend"), metavar="DIR",
                   help="where model.keras and the reports go (default %(default)s)")
    return p


def ensemble_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=f"{PROG} ensemble",
                                description="Join two trained models into one that averages "
                                "their logits (one file for the device) and write the same "
                                "reports as training.")
    p.add_argument("first", type=Path, metavar="FIRST.keras",
                   help="a trained model (its run's metrics.json gives the validation split)")
    p.add_argument("second", type=Path, metavar="SECOND.keras",
                   help="another, trained on the same split (any architecture)")
    p.add_argument("--data-dir", metavar="DIR", help=DATA_DIR_HELP)
    p.add_argument("--out", type=Path, default=Path("runs/ensemble"), metavar="DIR",
                   help="where model.keras and the reports go (default %(default)s)")
    return p


def _ensemble(argv: list[str]) -> int:
    args = ensemble_parser().parse_args(argv)
    for path in (args.first, args.second):
        check_keras_file(path)
    writable_folder(args.out)
    from train.data import load_mnist
    from train.ensemble import ensemble_and_report

    mnist = load_mnist(args.data_dir)
    try:
        metrics = ensemble_and_report(args.first, args.second, mnist, out=args.out)
    except ValueError as exc:
        return _fail(str(exc))
    print(f"ensemble of {args.first} and {args.second}: test accuracy "
          f"{metrics['test_accuracy']:.4%} (validation {metrics['val_accuracy']:.4%}), "
          f"{metrics['params']:,} parameters; reports in {args.out}")
    return 0


def _blend(argv: list[str]) -> int:
    args = blend_parser().parse_args(argv)
    for path in (args.base, args.tuned):
        check_keras_file(path)
    writable_folder(args.out)
    from train.blend import blend_and_report
    from train.data import load_mnist

    mnist = load_mnist(args.data_dir)
    try:
        metrics = blend_and_report(args.base, args.tuned, mnist, weight=args.weight,
                                   out=args.out)
    except ValueError as exc:  # two architectures: it says to blend a model with its own kind
        return _fail(str(exc))
    print(f"blend ({args.weight:g} of {args.tuned}): test accuracy "
          f"{metrics['test_accuracy']:.4%} (validation {metrics['val_accuracy']:.4%}); "
          f"reports in {args.out}")
    return 0


def _evaluate(argv: list[str]) -> int:
    args = evaluate_parser().parse_args(argv)
    check_keras_file(args.model)  # before MNIST: a wrong path should not wait for the data
    beside = args.model.parent / "evaluation"
    if (args.out is not None and (args.out / "metrics.json").is_file()
            and args.out.resolve() == args.model.resolve().parent):
        # That metrics.json is the model's training run's: blend, ensemble, --teacher and
        # convert read the split it was trained on there, which an evaluation's does not record.
        return _fail(f"--out {args.out} is the folder of {args.model}, whose metrics.json "
                     "records the split it was trained on: the evaluation's would replace it; "
                     f"leave --out out (reports go to {beside}) or pass another folder")
    out = writable_folder(args.out or beside)
    from train.data import load_mnist
    from train.run import evaluate_saved

    mnist = load_mnist(args.data_dir)
    metrics = evaluate_saved(args.model, mnist, out)
    print(f"test accuracy {metrics['test_accuracy']:.4%} ({metrics['errors']} errors); "
          f"reports in {out}")
    return 0


def _train(argv: list[str]) -> int:
    args = train_parser().parse_args(argv)
    from train.data import TRAIN_COUNT, validation_size

    count = min(args.limit or TRAIN_COUNT, TRAIN_COUNT)
    held_out = validation_size(count, args.val_split)
    if not 0 < held_out < count:  # an empty side ended deep in Keras or tf.data
        return _fail(f"--limit {count} with --val-split {args.val_split:g} leaves "
                     f"{count - held_out} training and {held_out} validation digits; each "
                     "needs at least one: raise --limit or bring --val-split toward 0.1")
    for path in (args.init_from, args.teacher):
        if path:
            check_keras_file(path)
    writable_folder(args.out)
    from train.data import load_mnist
    from train.report import format_per_class
    from train.run import train_and_report

    mnist = load_mnist(args.data_dir)
    print(f"MNIST from {mnist.source}")
    recipe = recipe_from(args)
    metrics = train_and_report(mnist, arch=args.arch, recipe=recipe, out=args.out,
                               val_split=args.val_split, loop=args.loop, limit_n=args.limit,
                               init_from=args.init_from)
    print(format_per_class(metrics["per_class"]))
    print(f"{metrics['arch']}: test accuracy {metrics['test_accuracy']:.4%} "
          f"(validation {metrics['val_accuracy']:.4%}), {metrics['params']:,} parameters, "
          f"{metrics['train_seconds']:.0f} s training; reports in {args.out}")
    if metrics["test_accuracy"] < args.min_test_accuracy:
        return _fail(below_floor(metrics, args.min_test_accuracy, args.out))
    return 0


def below_floor(metrics: dict, floor: float, out: Path) -> str:
    """Why a finished run is useless, and what to do: the loud end of a failed run."""
    predicted = [sum(column) for column in zip(*metrics["confusion_matrix"], strict=True)]
    favourite = max(range(len(predicted)), key=predicted.__getitem__)
    share_of_one = predicted[favourite] / max(1, sum(predicted))
    habit = (f"; it answers {favourite} for {share_of_one:.0%} of the test digits"
             if share_of_one > 0.5 else "")
    return (f"TRAINING FAILED: test accuracy {metrics['test_accuracy']:.2%} is below the "
            f"sanity floor of {floor:.0%} (--min-test-accuracy){habit}. Do not convert or "
            f"ship this model. Its reports are in {out}; pass --min-test-accuracy 0 to accept "
            "such a run anyway.")


def _fail(message: str) -> int:
    print(f"{PROG}: error: {message}", file=sys.stderr)
    return 1


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    try:
        if argv[:1] == ["evaluate"]:
            return _evaluate(argv[1:])
        if argv[:1] == ["blend"]:
            return _blend(argv[1:])
        if argv[:1] == ["ensemble"]:
            return _ensemble(argv[1:])
        return _train(argv)
    except (DataError, ModelFileError, OutputError) as exc:
        return _fail(str(exc))
    except KeyboardInterrupt:
        # A run's model and reports are put in place together, once all are written.
        # (Files of an earlier run that this one does not write stay beside them.)
        return _fail("interrupted; --out has none of this run's files or all of them")


if __name__ == "__main__":
    sys.exit(main())
