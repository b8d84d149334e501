"""Training inputs made the way the device makes them.

An MNIST model sees MNIST's own digits; the device feeds it digits cut out of pictures by its
preprocessing, written by people MNIST never met. So some training digits are restyled as real
handwriting varies (elastic wobble, slant, stroke width, broken strokes, continental 7s and 1s),
drawn into the pictures people take (`train.pictures`: files, crops, drawings, photos, either
polarity), and turned back into 28×28 inputs by `device.preprocess` itself. Only the training
split's digits are used; a picture from which the device does not cut exactly one digit is
skipped (the device would not read it either).
"""

from __future__ import annotations

import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor

import cv2
import numpy as np

from device.preprocess import extract_digits
from train.data import Split
from train.pictures import FAMILIES, photo
from train.recipe import Recipe
from train.styles import add_continental_styles, cross_seven, flag_one

UP = 4  # restyling works on the digit at 4× MNIST's size, where a stroke is ~9 px wide


def _elastic(image: np.ndarray, rng: np.random.Generator, alpha: float, sigma: float) -> np.ndarray:
    """Simard et al.'s elastic distortion: a smooth random displacement field."""
    h, w = image.shape
    dx = cv2.GaussianBlur(rng.uniform(-1, 1, (h, w)).astype(np.float32), (0, 0), sigma) * alpha
    dy = cv2.GaussianBlur(rng.uniform(-1, 1, (h, w)).astype(np.float32), (0, 0), sigma) * alpha
    xx, yy = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    return cv2.remap(image, xx + dx, yy + dy, cv2.INTER_LINEAR, borderValue=0)


def _slant_and_turn(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    h, w = image.shape
    shear, turn = rng.uniform(-0.35, 0.35), rng.uniform(-15, 15)
    matrix = cv2.getRotationMatrix2D((w / 2, h / 2), turn, 1.0)
    matrix[0, 1] += shear
    matrix[0, 2] -= shear * h / 2
    return cv2.warpAffine(image, matrix, (w, h), flags=cv2.INTER_LINEAR, borderValue=0)


def _stroke_width(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    size = int(rng.integers(-4, 7))  # thinner by up to ~4 px at 4×, bolder by up to ~6
    if size == 0:
        return image
    disk = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (abs(size) + 1, abs(size) + 1))
    changed = cv2.dilate(image, disk) if size > 0 else cv2.erode(image, disk)
    return changed if changed.max() > 128 else image


def _break_strokes(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One or two short gaps where the pen skipped."""
    ys, xs = np.nonzero(image > 128)
    out = image.copy()
    for _ in range(int(rng.integers(1, 3))):
        i = int(rng.integers(len(ys)))
        cv2.circle(out, (int(xs[i]), int(ys[i])), int(rng.integers(2, 5)), 0, -1)
    return out


def restyle(digit: np.ndarray, label: int, rng: np.random.Generator) -> np.ndarray:
    """An MNIST digit (28×28 uint8, white on black) written as another person might: returned
    at 4× (112×112), white on black."""
    if label == 7 and rng.random() < 0.4:
        digit = (cross_seven(digit / 255.0, rng) * 255).astype(np.uint8)
    elif label == 1 and rng.random() < 0.4:
        digit = (flag_one(digit / 255.0, rng) * 255).astype(np.uint8)
    big = cv2.resize(digit, None, fx=UP, fy=UP, interpolation=cv2.INTER_CUBIC)
    if rng.random() < 0.7:
        big = _elastic(big, rng, alpha=rng.uniform(8, 24), sigma=rng.uniform(6, 10))
    big = _slant_and_turn(big, rng)
    big = _stroke_width(big, rng)
    if rng.random() < 0.15:
        big = _break_strokes(big, rng)
    return big


def picture_of(big: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The restyled digit as one of the pictures people take of a digit."""
    small = cv2.resize(big, (28, 28), interpolation=cv2.INTER_AREA)
    if small.max() == 0:
        return small
    if rng.random() < 0.4:
        return photo(small, rng)
    family = list(FAMILIES.values())[int(rng.integers(len(FAMILIES)))]
    return family(small)


def _chunk(args: tuple[np.ndarray, np.ndarray, int]) -> tuple[np.ndarray, np.ndarray]:
    images, labels, seed = args
    rng = np.random.default_rng(seed)
    xs, ys = [], []
    for image, label in zip(images, labels, strict=True):
        picture = picture_of(restyle(image, int(label), rng), rng)
        try:
            candidates = extract_digits(picture).candidates
        except ValueError:
            continue
        if len(candidates) == 1:
            xs.append(candidates[0].input)
            ys.append(label)
    x = np.stack(xs) if xs else np.zeros((0, 28, 28, 1), np.float32)
    return x, np.asarray(ys, dtype=labels.dtype)


def device_inputs(images: np.ndarray, labels: np.ndarray, count: int, seed: int,
                  workers: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """``count`` digits drawn (with replacement, seeded) from ``images`` (N,28,28 uint8 or
    N,28,28,1 float) and turned into device inputs: (M,28,28,1) float32 in [0,1] and labels,
    M ≤ count. The same arguments give the same inputs whatever the number of workers."""
    if images.dtype != np.uint8:
        images = np.clip(np.rint(images.reshape(len(images), 28, 28) * 255), 0, 255)
        images = images.astype(np.uint8)
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, len(images), count)
    chunk = 500
    jobs = [(images[picks[i : i + chunk]], labels[picks[i : i + chunk]], seed * 100_003 + i)
            for i in range(0, count, chunk)]
    workers = workers or os.cpu_count() or 1
    if workers == 1:
        parts = [_chunk(job) for job in jobs]
    else:
        # Spawned, not forked: the parent may already run TensorFlow's threads.
        with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
            parts = list(pool.map(_chunk, jobs))
    return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])


def with_device_inputs(split: Split, count: int, seed: int) -> Split:
    """``split`` plus ``count`` (or a few fewer) of its digits as the device would see them."""
    if count <= 0:
        return split
    x, y = device_inputs(split.x, split.y, count, seed)
    return Split(np.concatenate([split.x, x]), np.concatenate([split.y, y]))


def phase_digits(train: Split, recipe: Recipe) -> Split:
    """A training phase's digits: ``train`` with the recipe's share of 7s crossed and 1s flagged,
    plus its device inputs."""
    styled = add_continental_styles(train, recipe.styles, recipe.seed)
    return with_device_inputs(styled, recipe.device_inputs, recipe.seed)
