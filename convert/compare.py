"""Train every registered architecture with one recipe, convert each to int8, tabulate."""

from __future__ import annotations

import json
import os
import platform
from pathlib import Path

from convert.pipeline import convert_and_verify
from train import models
from train.data import Mnist
from train.fit import Recipe
from train.run import train_and_report


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        names = [line.split(":", 1)[1].strip() for line in cpuinfo.read_text().splitlines()
                 if line.startswith("model name")]
        cpu = names[0] if names else cpu
    return f"{cpu}, {os.cpu_count()} cores, Python {platform.python_version()}"


def compare(mnist: Mnist, out: Path, recipe: Recipe, archs: list[str] | None = None,
            limit_n: int | None = None) -> list[dict]:
    rows = []
    for arch in archs or list(models.REGISTRY):
        run_dir = out / arch
        trained = train_and_report(mnist, arch=arch, recipe=recipe, out=run_dir,
                                   val_split=0.1, limit_n=limit_n)
        _, card = convert_and_verify(run_dir / "model.keras", run_dir, "int8", mnist)
        rows.append({
            "arch": arch,
            "params": trained["params"],
            "val_accuracy": trained["val_accuracy"],
            "float_accuracy": card["metrics"]["float_test_accuracy"],
            "int8_accuracy": card["metrics"]["tflite_test_accuracy"],
            "int8_bytes": card["bytes"],
            "us_per_digit": card["metrics"]["median_us_per_digit"],
            "train_seconds": trained["train_seconds"],
            "epochs_run": trained["epochs_run"],
        })
        (out / "comparison.json").write_text(json.dumps(rows, indent=2) + "\n")
    return rows


def lesson(rows: list[dict]) -> str:
    """One sentence on what the table teaches, derived from the numbers themselves."""
    best = max(rows, key=lambda r: (r["int8_accuracy"], -r["int8_bytes"]))
    smallest = min(rows, key=lambda r: r["int8_bytes"])
    largest = max(rows, key=lambda r: r["int8_bytes"])
    text = (f"`{best['arch']}` reads MNIST best after int8 quantization "
            f"({best['int8_accuracy']:.2%} in {best['int8_bytes'] / 1024:.0f} KB)")
    if largest["arch"] != best["arch"]:
        ratio = largest["int8_bytes"] / best["int8_bytes"]
        text += (f"; `{largest['arch']}` spends {ratio:.0f}× its bytes "
                 f"for {largest['int8_accuracy']:.2%}")
    if smallest["arch"] != best["arch"]:
        text += (f"; the smallest, `{smallest['arch']}` ({smallest['int8_bytes'] / 1024:.0f} KB), "
                 f"reaches {smallest['int8_accuracy']:.2%}")
    worst_drop = max(rows, key=lambda r: r["float_accuracy"] - r["int8_accuracy"])
    drop_pp = (worst_drop["float_accuracy"] - worst_drop["int8_accuracy"]) * 100
    return (text + f". Full-integer quantization costs at most {drop_pp:.2f} percentage points "
            f"here (`{worst_drop['arch']}`), so the choice of architecture, not int8, decides "
            "what a Pi can read.")


# What the reference architectures are published to reach on the MNIST test set.
PUBLISHED = {"mlp": "97–98% (the notebooks)", "keras-convnet": "≈ 99.2% (Keras mnist_convnet.py)"}


def render(rows: list[dict], recipe: Recipe, limit_n: int | None) -> str:
    data = "the full MNIST training set" if not limit_n else f"the first {limit_n} digits"
    names = [r["arch"] for r in rows]
    everyone = set(names) == set(models.REGISTRY)
    who = ("Every registered architecture" if everyone
           else "The architectures " + ", ".join(f"`{n}`" for n in names))
    lines = [
        "# Architecture comparison",
        "",
        f"{who} trained with one recipe in one run of",
        f"`python -m convert compare{'' if everyone else ' --arch …'}`, "
        "then converted to full-integer int8 and",
        "evaluated with the LiteRT interpreter on all 10,000 MNIST test digits.",
        "",
        f"- Recipe: {recipe.optimizer} at {recipe.learning_rate}, batch {recipe.batch_size}, "
        f"at most {recipe.epochs} epochs, early stopping (patience {recipe.patience}) and "
        f"learning-rate halving on validation loss, augmentation "
        f"{'on' if recipe.augment else 'off'}, seed {recipe.seed}; {data}, 10% held out for "
        "validation.",
        f"- Machine: {machine()}; µs per digit is the median of single-digit LiteRT calls on "
        "one thread.",
        "",
        "| architecture | parameters | val acc | float test acc | int8 test acc | published "
        "| int8 bytes | µs/digit | training s (epochs) |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    lines += [
        f"| `{r['arch']}` | {r['params']:,} | {r['val_accuracy']:.2%} | {r['float_accuracy']:.2%} "
        f"| {r['int8_accuracy']:.2%} | {PUBLISHED.get(r['arch'], '—')} | {r['int8_bytes']:,} "
        f"| {r['us_per_digit']:.0f} | {r['train_seconds']:.0f} ({r['epochs_run']}) |"
        for r in rows
    ]
    lines += ["", lesson(rows), "",
              "The recipe here is whatever `--epochs` asked for, the same for every row; the "
              "shipped model's full recipe and figures are in "
              "[models/MODEL_CARD.md](../models/MODEL_CARD.md).", ""]
    return "\n".join(lines)
