"""Kernels, sizes and the stroke-width measure that several stages share."""

from __future__ import annotations

from collections.abc import Callable

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


def components(mask: np.ndarray) -> tuple[int, np.ndarray, np.ndarray]:
    """8-connected components of a binary mask: their count (with the ground, label 0), the
    label of each pixel (1..n-1 in raster order) and their stats, as
    cv2.connectedComponentsWithStats gives them; by the BBDT algorithm, which labels alike and
    gathers the stats in about half the time of OpenCV's default here."""
    n, labels, stats, _ = cv2.connectedComponentsWithStatsWithAlgorithm(
        mask, 8, cv2.CV_32S, cv2.CCL_BBDT
    )
    return n, labels, stats


def labelled(mask: np.ndarray) -> tuple[int, np.ndarray]:
    """components' count and labels without its stats, whose pass costs four to five times the
    labelling's: for a stage that needs few of them (largest, boxes)."""
    return cv2.connectedComponentsWithAlgorithm(mask, 8, cv2.CV_32S, cv2.CCL_BBDT)


def largest(labels: np.ndarray, n: int) -> tuple[int, int]:
    """The label and the area of the largest of components 1..n-1 (the first of equals, as
    np.argmax of components' areas picks it)."""
    if n == 2:  # one component, as most masks a frame's stages measure are: nothing to compare
        return 1, cv2.countNonZero(labels)
    areas = np.bincount(labels.ravel(), minlength=n)
    label = 1 + int(np.argmax(areas[1:]))
    return label, int(areas[label])


def boxes(mask: np.ndarray, labels: np.ndarray, n: int) -> np.ndarray:
    """x, y, w, h of components 1..n-1 (uint8 ``mask``, labelled as ``labels``), as components'
    stats give them, from their outer outlines: a component's outline holds its extreme
    pixels. RETR_CCOMP keeps a component lying in another's hole among the outer outlines."""
    outlines, hierarchy = cv2.findContours(mask, cv2.RETR_CCOMP, cv2.CHAIN_APPROX_SIMPLE)
    found = np.zeros((n, 4), np.int32)
    for points, (*_, parent) in zip(outlines, hierarchy[0] if outlines else (), strict=True):
        if parent < 0:  # an outer outline, not a hole's
            x, y = points[0, 0]
            found[labels[y, x]] = cv2.boundingRect(points)
    return found[1:]


def disk(size: int) -> np.ndarray:
    """A round structuring element ``size`` px across."""
    return cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (size, size))


# A solid shape fills its convex hull but for its outline's wobble and where something cuts it:
# a blob whose radius wobbles by up to 15% fills over 96% of its hull, a thumb cut by the
# sheet's edge 93%, a sheet of paper with a pen lying across it or digits on it over 95%. A
# bold marker digit whose loops have filled in leaves bays: an 8's waist, a 2's or a 9's curve
# (85-90%). Chosen on validation pictures: the bold-marker family read 97.9% of 1,000
# validation digits without the solid-shape test (candidates), 98.4% with it; no set read worse.
SOLID_HULL_FILL = 0.9


def _hull_points(shape: np.ndarray) -> np.ndarray:
    """The corners of a shape's (uint8, nonzero = inside) convex hull: the hull of its
    outlines' corners is the hull of all its pixels, found from a few dozen points instead of
    thousands."""
    outlines, _ = cv2.findContours(shape, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    return cv2.convexHull(np.concatenate(outlines))


def fills_its_hull(shape: np.ndarray) -> bool:
    """Whether the shape (uint8, nonzero = inside) covers most of its convex hull."""
    return cv2.countNonZero(shape) >= SOLID_HULL_FILL * cv2.contourArea(_hull_points(shape))


def convex_hull(shape: np.ndarray) -> np.ndarray:
    """A shape's (bool or 0/1) convex hull, filled (bool)."""
    hull = np.zeros(shape.shape, np.uint8)
    if not shape.any():
        return hull > 0
    cv2.fillPoly(hull, [_hull_points(shape.astype(np.uint8))], 1)
    return hull > 0


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


# From this many 8-bit values on, counting shades beats a partial sort (~3,000 measured).
COUNTING_PAYS = 4096


def shade_counts(image: np.ndarray) -> np.ndarray:
    """How many of an 8-bit image's pixels (any shape) have each shade 0..255, as np.bincount
    counts them, by OpenCV's histogram: about twice as fast on a frame's pixels. (Its float32
    counts are exact below 2**24 pixels, far more than any stage counts.)"""
    return cv2.calcHist([image], [0], None, [256], [0, 256]).ravel().astype(np.int64)


def percentiles(values: np.ndarray, qs: tuple[float, ...]) -> list[float]:
    """np.percentile's (linear) percentiles without its generic overhead, which several calls a
    frame add up to: by counting shades for many 8-bit values, by one partial sort otherwise."""
    flat = values.ravel()
    if flat.dtype == np.uint8 and flat.size >= COUNTING_PAYS:
        return shade_percentiles(shade_counts(values), qs)
    return _interpolated(flat.size, qs, lambda ranks: np.partition(flat, ranks)[ranks])


def shade_percentiles(counts: np.ndarray, qs: tuple[float, ...]) -> list[float]:
    """The same percentiles of the values a histogram counts (``counts[s]``: how many are s),
    without the values: the k-th smallest is the first shade whose running count passes k."""
    running = np.cumsum(counts)
    return _interpolated(
        int(running[-1]), qs, lambda ranks: np.searchsorted(running, ranks, side="right")
    )


def _interpolated(
    size: int, qs: tuple[float, ...], smallest: Callable[[list[int]], np.ndarray]
) -> list[float]:
    """Linear percentiles of ``size`` values, given ``smallest(ranks)``: the k-th smallest value
    for each rank k (0-based)."""
    last = size - 1
    positions = [q / 100 * last for q in qs]
    below = [int(p) for p in positions]
    ranks = sorted({*below, *(min(b + 1, last) for b in below)})
    value = dict(zip(ranks, smallest(ranks).tolist(), strict=True))
    return [value[b] + (value[min(b + 1, last)] - value[b]) * (p - b)
            for p, b in zip(positions, below, strict=True)]


def median(values: np.ndarray) -> float:
    return percentiles(values, (50,))[0]
