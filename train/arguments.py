"""Argument types for `python -m train` and `python -m convert`.

Each raises argparse.ArgumentTypeError with a sentence about the value, so a wrong flag reads
"argument --epochs: 'abc' is not a whole number of at least 1" instead of naming a function.
"""

from __future__ import annotations

import argparse

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
