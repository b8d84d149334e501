"""`python -m convert`: Keras → TFLite with proof, and the tools around it."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from convert.tflite import QUANT_MODES, ConversionError
from train.arguments import DATA_DIR_HELP, positive_int
from train.data import DataError
from train.errors import ModelFileError, OutputError, check_keras_file, writable_folder

PROG = "python -m convert"
USAGE = f"""\
{PROG} MODEL.keras [--out DIR] [--name NAME] [--quant MODE] [options]
       {PROG} first-look JOINED.keras SIDECAR.json
       {PROG} evaluate MODEL.tflite [--keras MODEL.keras] [--threads N]
       {PROG} compare [--epochs N] [--arch NAME ...] [--out DIR] [--doc FILE]
       {PROG} card SIDECAR.json"""


def _convert(argv: list[str]) -> int:
    p = argparse.ArgumentParser(
        prog=PROG, usage=USAGE, formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Convert a Keras model to TFLite, evaluate it with LiteRT on the 10,000 "
        "MNIST test digits and write\nits JSON sidecar. The other commands: 'evaluate' "
        "re-measures a .tflite, 'first-look' adds a cheap first reader to a joined model, "
        "'compare' trains and\ntabulates every architecture, 'card' "
        "writes MODEL_CARD.md from a sidecar (each has --help).")
    p.add_argument("model", type=Path, metavar="MODEL.keras",
                   help="a .keras model written by python -m train")
    p.add_argument("--out", type=Path, default=Path("models"), metavar="DIR",
                   help="folder for the .tflite and its .json sidecar (default %(default)s)")
    p.add_argument("--quant", default="int8", choices=QUANT_MODES,
                   help="int8 (default): full-integer with int8 input and output; float16, "
                   "dynamic (int8 weights, float activations) or float32")
    p.add_argument("--name", help="file stem (default: <arch>); the precision is appended")
    p.add_argument("--data-dir", metavar="DIR",
                   help=f"MNIST, for calibration and evaluation: {DATA_DIR_HELP}")
    p.add_argument("--calibration-samples", type=positive_int, metavar="N",
                   help="calibrate int8 on exactly N training digits (default: try "
                   "100, 500, 1000, 2000 and 5000 and keep the best on the validation digits)")
    p.add_argument("--allow-drop", action="store_true",
                   help="keep an int8 model that loses more than 0.05 pp against float")
    args = p.parse_args(argv)
    _check_keras_model(args.model)  # before MNIST: a wrong file should not wait for the data
    writable_folder(args.out)
    from convert.pipeline import (
        CALIBRATION_SIZES,
        MAX_INT8_DROP_PP,
        convert_and_verify,
        summary_line,
    )
    from train.data import load_mnist

    mnist = load_mnist(args.data_dir)
    sizes = (args.calibration_samples,) if args.calibration_samples else CALIBRATION_SIZES
    path, card = convert_and_verify(args.model, args.out, args.quant, mnist, args.name,
                                    calibration_sizes=sizes)
    print(summary_line(card))
    print(f"wrote {path} and {path.with_suffix('.json')}")
    drop = card["metrics"]["drop_pp"]
    if args.quant == "int8" and drop > MAX_INT8_DROP_PP and not args.allow_drop:
        return _fail(f"int8 loses {drop:.3f} pp against float (budget {MAX_INT8_DROP_PP} pp); "
                     "train with quantization-aware training or pass --allow-drop")
    return 0


def _check_keras_model(path: Path) -> None:
    try:
        check_keras_file(path)
    except ModelFileError as exc:
        raise ConversionError(str(exc)) from None


def _evaluate(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog=f"{PROG} evaluate",
                                description="Evaluate a .tflite model with LiteRT on the 10,000 "
                                "MNIST test digits: accuracy, per-class report, confusion "
                                "matrix, size and speed.")
    p.add_argument("model", type=Path, metavar="MODEL.tflite", help="the model to evaluate")
    p.add_argument("--keras", type=Path, metavar="MODEL.keras",
                   help="the float model it was converted from, to measure agreement")
    p.add_argument("--threads", type=positive_int, default=1, metavar="N",
                   help="interpreter threads (default %(default)s)")
    p.add_argument("--data-dir", metavar="DIR", help=DATA_DIR_HELP)
    p.add_argument("--json", action="store_true", help="print the metrics as JSON")
    args = p.parse_args(argv)
    from convert.evaluate import TFLiteClassifier, evaluate_tflite
    from device.sidecar import ModelError

    # Both models are checked before MNIST is loaded: a wrong file fails at once.
    if not args.model.is_file():
        raise ConversionError(f"model file {args.model} does not exist")
    try:
        TFLiteClassifier(args.model)
    except (ValueError, RuntimeError, ModelError) as exc:
        raise ConversionError(f"{args.model} is not a loadable TFLite model ({exc})") from exc
    keras_model = None
    if args.keras:
        _check_keras_model(args.keras)
        from convert.pipeline import load_keras

        keras_model = load_keras(args.keras)
    from train.data import load_mnist
    from train.report import format_per_class

    mnist = load_mnist(args.data_dir)
    keras_probs = None
    if keras_model is not None:
        keras_probs = keras_model.predict(mnist.test.x, batch_size=1024, verbose=0)
    metrics = evaluate_tflite(args.model, mnist.test.x, mnist.test.y, keras_probs,
                              threads=args.threads)
    if args.json:
        print(json.dumps(metrics, indent=2))
        return 0
    print(format_per_class(metrics["per_class"]))
    print("confusion matrix (rows: true digit, columns: predicted)")
    for row in metrics["confusion_matrix"]:
        print(" ".join(f"{v:5d}" for v in row))
    line = (f"{args.model}: accuracy {metrics['test_accuracy']:.4%} on 10,000 test digits "
            f"({metrics['errors']} errors), {metrics['bytes']:,} bytes, "
            f"{metrics['median_us_per_digit']:.0f} µs/digit median")
    if keras_probs is not None:
        line += f", agreement with Keras {metrics['agreement_with_keras']:.4%}"
    print(line)
    return 0


def _first_look(argv: list[str]) -> int:
    p = argparse.ArgumentParser(
        prog=f"{PROG} first-look",
        description="Give a model joined by `python -m train ensemble` a first look: its "
        "small member, converted alone, reads each digit first and the whole model runs only "
        "for the digits it is not sure of. Writes <stem>_first_look_int8.tflite and its "
        "sidecar beside SIDECAR.json and records it there, with the threshold chosen on the "
        "validation digits.")
    p.add_argument("model", type=Path, metavar="JOINED.keras",
                   help="the joined model SIDECAR.json's .tflite was converted from")
    p.add_argument("sidecar", type=Path, metavar="SIDECAR.json",
                   help="the joined model's sidecar (written by python -m convert)")
    p.add_argument("--member", choices=("first", "second"), default="second",
                   help="which member looks first (default %(default)s: the small one)")
    p.add_argument("--data-dir", metavar="DIR", help=DATA_DIR_HELP)
    args = p.parse_args(argv)
    _check_keras_model(args.model)
    if not args.sidecar.is_file():
        raise ConversionError(f"sidecar {args.sidecar} does not exist; convert the joined "
                              "model first (python -m convert JOINED.keras)")
    from convert import sidecar
    from convert.first_look import add_first_look, calibrated_model_of
    from train.data import load_mnist

    calibrated_model_of(args.sidecar, sidecar.read(args.sidecar))  # before MNIST and the work

    path, card = add_first_look(args.model, args.sidecar, load_mnist(args.data_dir),
                                role=args.member)
    look = card["first_look"]
    print(f"wrote {path} and its sidecar: {look['bytes']:,} bytes, final at confidence "
          f"≥ {look['accept_at']} (settles {look['test_settled_share']:.1%} of the MNIST test "
          f"digits alone); recorded in {args.sidecar}")
    return 0


def _compare(argv: list[str]) -> int:
    from train.recipe import ARCHITECTURES, Recipe

    p = argparse.ArgumentParser(prog=f"{PROG} compare",
                                description="Train every architecture (or those named) with one "
                                "recipe, convert each to int8 and tabulate them in --doc.")
    p.add_argument("--epochs", type=positive_int, default=15, metavar="N",
                   help="epochs per architecture (default %(default)s)")
    p.add_argument("--augment", action=argparse.BooleanOptionalAction, default=False,
                   help="train with augmentation (default off: the published recipes)")
    p.add_argument("--arch", action="append", choices=list(ARCHITECTURES), metavar="NAME",
                   help="only this architecture (repeatable; default all: "
                   f"{', '.join(ARCHITECTURES)})")
    p.add_argument("--limit", type=positive_int, metavar="N",
                   help="use only the first N training and N test digits (quick runs)")
    p.add_argument("--data-dir", metavar="DIR", help=DATA_DIR_HELP)
    p.add_argument("--out", type=Path, default=Path("runs/compare"), metavar="DIR",
                   help="folder for each architecture's run (default %(default)s)")
    p.add_argument("--doc", type=Path, default=Path("docs/ARCHITECTURES.md"), metavar="FILE",
                   help="the Markdown table to write (default %(default)s)")
    args = p.parse_args(argv)
    # Both before the training: the table is written only after every architecture has run.
    writable_folder(args.out)
    if args.doc.is_dir():
        raise OutputError(f"--doc {args.doc} is a folder; pass the Markdown file to write")
    writable_folder(args.doc.parent, "--doc's folder")
    from convert.compare import compare, render
    from train.data import load_mnist

    recipe = Recipe(epochs=args.epochs, augment=args.augment)
    rows = compare(load_mnist(args.data_dir), args.out, recipe, args.arch, args.limit)
    args.doc.parent.mkdir(parents=True, exist_ok=True)
    args.doc.write_text(render(rows, recipe, args.limit))
    print(f"wrote {args.doc}")
    return 0


def _card(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog=f"{PROG} card",
                                description="Write MODEL_CARD.md beside a model's sidecar, "
                                "from the figures the sidecar records.")
    p.add_argument("target", type=Path, metavar="SIDECAR.json",
                   help="a sidecar .json, or a folder holding one (its *_int8.json first)")
    args = p.parse_args(argv)
    from convert.card import write_card

    target = args.target
    if target.is_dir():
        found = sorted(target.glob("*_int8.json")) or sorted(target.glob("*.json"))
        if not found:
            raise ConversionError(f"no sidecar .json in {target}")
        target = found[0]
    if not target.is_file():
        raise ConversionError(f"sidecar {target} does not exist")
    print(f"wrote {write_card(target)}")
    return 0


COMMANDS = {"evaluate": _evaluate, "first-look": _first_look, "compare": _compare, "card": _card}


def _fail(message: str) -> int:
    print(f"{PROG}: error: {message}", file=sys.stderr)
    return 1


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    command = COMMANDS.get(argv[0]) if argv else None
    try:
        return command(argv[1:]) if command else _convert(argv)
    except (ConversionError, DataError, OutputError) as exc:
        return _fail(str(exc))
    except KeyboardInterrupt:
        # A converted model and its sidecar are put in place together, after verification.
        return _fail("interrupted; a model and sidecar already in --out were left as they were")


if __name__ == "__main__":
    sys.exit(main())
