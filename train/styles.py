"""Handwriting styles MNIST barely has: the continental 7 with a crossbar and 1 with a long flag.

MNIST's writers were American. Much of Europe crosses its 7s and starts its 1s with a long
up-stroke; an MNIST model reads those as 4 or 2 and as 7. Drawing the missing stroke onto some
of the training 7s and 1s teaches both styles without a single real example of them.
"""

from __future__ import annotations

import numpy as np

from train.data import Split

INK = 0.3  # a pixel brighter than this is part of the digit


def stroke(shape: tuple[int, int], start: tuple[float, float], end: tuple[float, float],
           width: float) -> np.ndarray:
    """An anti-aliased straight stroke (1.0 = full ink) from start to end, as (y, x) points."""
    yy, xx = np.mgrid[0 : shape[0], 0 : shape[1]].astype(np.float32)
    (y0, x0), (y1, x1) = start, end
    dy, dx = y1 - y0, x1 - x0
    t = np.clip(((yy - y0) * dy + (xx - x0) * dx) / max(dy * dy + dx * dx, 1e-6), 0.0, 1.0)
    distance = np.hypot(yy - (y0 + t * dy), xx - (x0 + t * dx))
    return np.clip(width / 2 + 0.5 - distance, 0.0, 1.0)


def _rows(image: np.ndarray) -> np.ndarray:
    return np.flatnonzero(image.max(axis=1) > INK)


def cross_seven(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A 7 with a short bar across its stem, a little below half its height."""
    rows = _rows(image)
    if len(rows) < 8:
        return image
    top, height = rows[0], rows[-1] - rows[0]
    y = round(top + height * rng.uniform(0.45, 0.6))
    cols = np.flatnonzero(image[y] > INK)
    if not len(cols):
        return image
    centre, half, tilt = cols.mean(), height * rng.uniform(0.18, 0.3), rng.uniform(-1.0, 1.0)
    bar = stroke(image.shape, (y + tilt, centre - half), (y - tilt, centre + half),
                 rng.uniform(1.8, 2.8))
    return np.maximum(image, bar)


def flag_one(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A 1 whose top starts with a long up-stroke from the lower left, steeper than a 7's bar."""
    rows = _rows(image)
    if len(rows) < 8:
        return image
    top, height = rows[0], rows[-1] - rows[0]
    x = np.flatnonzero(image[top] > INK).mean()
    length, angle = height * rng.uniform(0.3, 0.45), np.radians(rng.uniform(35, 60))
    end = (top + length * np.sin(angle), x - length * np.cos(angle))
    return np.maximum(image, stroke(image.shape, (top, x), end, rng.uniform(1.8, 2.8)))


def add_continental_styles(split: Split, fraction: float, seed: int) -> Split:
    """A copy of ``split`` in which ``fraction`` of the 7s are crossed and of the 1s flagged."""
    if fraction <= 0:
        return split
    rng = np.random.default_rng(seed)
    x = split.x.copy()
    for digit, draw in ((7, cross_seven), (1, flag_one)):
        chosen = np.flatnonzero(split.y == digit)
        chosen = chosen[rng.random(len(chosen)) < fraction]
        for i in chosen:
            x[i, ..., 0] = draw(x[i, ..., 0], rng)
    return Split(x, split.y)
