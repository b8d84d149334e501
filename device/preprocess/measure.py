"""Kernels, sizes and the stroke-width measure that several stages share."""

from __future__ import annotations

import cv2
import numpy as np


def odd(n: float) -> int:
    """An odd kernel size of at least 3 and about n."""
    n = max(3, int(n))
    return n if n % 2 else n + 1


def small_copy(gray: np.ndarray, side: int) -> np.ndarray:
    """The picture shrunk (never enlarged) so its longer side is at most ``side``."""
    scale = min(1.0, side / max(gray.shape))
    return cv2.resize(gray, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)


def disk(size: int) -> np.ndarray:
    """A round structuring element ``size`` px across."""
    return cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (size, size))


def stroke_width(mask: np.ndarray) -> float:
    """Mean stroke width of a binary shape: area over half the outline length (2A/P)."""
    area = float(np.count_nonzero(mask))
    if area == 0:
        return 0.0
    contours, _ = cv2.findContours(
        (mask > 0).astype(np.uint8), cv2.RETR_LIST, cv2.CHAIN_APPROX_SIMPLE
    )
    perimeter = sum(cv2.arcLength(c, closed=True) for c in contours)
    return 2.0 * area / max(perimeter, 1.0)
