"""``python -m convert``: Keras → TFLite with proof, and the tools around it.

    python -m convert MODEL.keras --out models/ [--quant int8|float16|dynamic|float32]
    python -m convert evaluate MODEL.tflite [--keras MODEL.keras] [--threads N]
    python -m convert compare [--epochs N] [--out DIR] [--doc docs/ARCHITECTURES.md]
    python -m convert card models/digitnet_int8.json
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from convert.tflite import QUANT_MODES, ConversionError
from train.data import DataError


def _convert(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="python -m convert", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model", type=Path, help="a .keras model written by python -m train")
    p.add_argument("--out", type=Path, default=Path("models"))
    p.add_argument("--quant", default="int8", choices=QUANT_MODES,
                   help="int8 (default): full-integer with int8 input and output")
    p.add_argument("--name", help="file stem (default: <arch>); the precision is appended")
    p.add_argument("--data-dir", help="MNIST location (for calibration and evaluation)")
    p.add_argument("--calibration-samples", type=int, metavar="N",
                   help="calibrate int8 on exactly N training digits (default: try "
                   "100, 500, 1000, 2000 and 5000 and keep the best on the validation digits)")
    p.add_argument("--allow-drop", action="store_true",
                   help="keep an int8 model that loses more than 0.05 pp against float")
    args = p.parse_args(argv)
    if args.calibration_samples is not None and args.calibration_samples < 1:
        p.error(f"--calibration-samples must be at least 1, got {args.calibration_samples}")
    from convert.pipeline import (
        CALIBRATION_SIZES,
        MAX_INT8_DROP_PP,
        convert_and_verify,
        summary_line,
    )
    from train.data import load_mnist

    if not args.model.is_file():
        raise ConversionError(f"model file {args.model} does not exist")
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


def _evaluate(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="python -m convert evaluate",
                                description="Evaluate a .tflite model with LiteRT on MNIST test.")
    p.add_argument("model", type=Path)
    p.add_argument("--keras", type=Path, help="the float model, to measure agreement")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--data-dir")
    p.add_argument("--json", action="store_true", help="print the metrics as JSON")
    args = p.parse_args(argv)
    from convert.evaluate import evaluate_tflite
    from convert.pipeline import load_keras
    from device.sidecar import ModelError
    from train.data import load_mnist
    from train.report import format_per_class

    if not args.model.is_file():
        raise ConversionError(f"model file {args.model} does not exist")
    mnist = load_mnist(args.data_dir)
    keras_probs = None
    if args.keras:
        keras_probs = load_keras(args.keras).predict(mnist.test.x, batch_size=1024, verbose=0)
    try:
        metrics = evaluate_tflite(args.model, mnist.test.x, mnist.test.y, keras_probs,
                                  threads=args.threads)
    except (ValueError, RuntimeError, ModelError) as exc:
        raise ConversionError(f"{args.model} is not a loadable TFLite model ({exc})") from exc
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


def _compare(argv: list[str]) -> int:
    from train.fit import Recipe

    p = argparse.ArgumentParser(prog="python -m convert compare",
                                description="Train, convert and tabulate every architecture.")
    p.add_argument("--epochs", type=int, default=15)
    p.add_argument("--augment", action=argparse.BooleanOptionalAction, default=False)
    p.add_argument("--arch", action="append", help="only these (repeatable)")
    p.add_argument("--limit", type=int)
    p.add_argument("--data-dir")
    p.add_argument("--out", type=Path, default=Path("runs/compare"))
    p.add_argument("--doc", type=Path, default=Path("docs/ARCHITECTURES.md"))
    args = p.parse_args(argv)
    from convert.compare import compare, render
    from train.data import load_mnist
    from train.models import REGISTRY

    unknown = [a for a in args.arch or [] if a not in REGISTRY]
    if unknown:
        p.error(f"unknown architecture {', '.join(unknown)}; choose from {', '.join(REGISTRY)}")
    recipe = Recipe(epochs=args.epochs, augment=args.augment)
    rows = compare(load_mnist(args.data_dir), args.out, recipe, args.arch, args.limit)
    args.doc.parent.mkdir(parents=True, exist_ok=True)
    args.doc.write_text(render(rows, recipe, args.limit))
    print(f"wrote {args.doc}")
    return 0


def _card(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="python -m convert card",
                                description="Write MODEL_CARD.md from a model's sidecar.")
    p.add_argument("target", type=Path, help="a sidecar .json, or a folder holding exactly one")
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


COMMANDS = {"evaluate": _evaluate, "compare": _compare, "card": _card}


def _fail(message: str) -> int:
    print(f"error: {message}", file=sys.stderr)
    return 1


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    command = COMMANDS.get(argv[0]) if argv else None
    try:
        return command(argv[1:]) if command else _convert(argv)
    except (ConversionError, DataError) as exc:
        return _fail(str(exc))


if __name__ == "__main__":
    sys.exit(main())
