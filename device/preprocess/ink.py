"""From the ink map to a mask of ink: ruled lines subtracted, a hysteresis threshold."""

from __future__ import annotations

import functools
from collections.abc import Iterable
from dataclasses import dataclass

import cv2
import numpy as np

from device.preprocess.ground import FAINT_INK, INK_FLOOR, paper_statistics
from device.preprocess.measure import boxes, components, labelled
from device.preprocess.polarity import narrow_crop

# Printed rules and grid lines are at most this thick (px, in the searched image); a digit
# large enough to have a bar across half the frame has thicker strokes than that.
LINE_MAX_THICKNESS = 6
LINE_LEVEL = 16  # ink a line leaves after a long opening: paper texture and noise never do


@dataclass
class InkMask:
    """The ink mask and its 8-connected components, as `cv2.connectedComponentsWithStats` of
    the mask would number them (1..n in raster order, 0 the ground): the threshold finds them
    anyway, so the candidates stage need not label the frame a second time."""

    mask: np.ndarray  # uint8, 255 = ink
    labels: np.ndarray  # int32, the component of each pixel
    boxes: np.ndarray  # (n, 4) int32: x, y, w, h of components 1..n


def threshold_ink(ink: np.ndarray, noise: float | None = 0.0) -> InkMask:
    """Hysteresis threshold: Otsu's level for sure ink, half of it to follow faint strokes.

    A floor above the paper's own texture and noise keeps blank paper blank (Otsu alone always
    splits). ``noise`` None: a clean picture, whose ground is exactly 0 here, however little
    of it a tight crop leaves.
    """
    floor = INK_FLOOR
    if noise is not None:
        level, spread = paper_statistics(ink[::2, ::2])  # a quarter of the pixels is plenty
        floor = max(floor, level + 5.4 * spread, 6.0 * noise)
    otsu, _ = cv2.threshold(ink, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    strong_level = max(float(otsu), floor)
    weak_level = max(strong_level * 0.5, floor * FAINT_INK)
    weak = (ink > weak_level).astype(np.uint8)
    n, labels = labelled(weak)
    # Ink is each weak component holding some strong ink. Kept components stay apart in the
    # mask, and keep their raster order: numbering them 1..m in order labels the mask.
    kept = np.bincount(labels[ink > strong_level], minlength=n) > 0
    kept[0] = False
    if not kept[1:].all():  # usually every faint stroke holds sure ink, and nothing changes
        labels = np.take(np.where(kept, np.cumsum(kept), 0).astype(np.int32), labels)
    mask = cv2.compare(labels, 0, cv2.CMP_GT)
    # The boxes of the kept components only, from the mask's outlines: labelling the whole
    # frame's stats cost more than the rest of the threshold.
    return InkMask(mask, labels, boxes(mask, labels, int(np.count_nonzero(kept)) + 1))


def _open(image: np.ndarray, kernel: tuple[int, int]) -> np.ndarray:
    return cv2.morphologyEx(
        image,
        cv2.MORPH_OPEN,
        cv2.getStructuringElement(cv2.MORPH_RECT, kernel),
        borderType=cv2.BORDER_CONSTANT,
        borderValue=0,
    )


def remove_ruled_lines(ink: np.ndarray, page: bool = False) -> tuple[np.ndarray, bool]:
    """Subtract straight lines spanning most of the frame (ruled paper, grid, paper edges).

    Works on the ink strength, before thresholding: a grey-level opening with a long thin
    kernel keeps only what a line contributes, so a stroke crossing a line keeps its own ink
    and is not cut in two. Returns the cleaned ink and whether any line was found.

    ``page``: the picture is a clean page (a scan, a drawing, a crop; no sheet inside a
    scene), where a fine pen's bar (a 7's, a 4's) is as long and thin as a rule; there a line
    is a rule only where it runs past the rest of the ink at both ends, as a rule runs on past
    the digits written across it.
    """
    h, w = ink.shape
    found: dict[int, np.ndarray] = {}  # by the axis the lines run along: 1 across, 0 down
    horizontal = ((max(15, int(w * 0.5)), 1), (1, LINE_MAX_THICKNESS + 1))  # (along, across)
    vertical = ((1, max(15, int(h * 0.85))), (LINE_MAX_THICKNESS + 1, 1))
    # In the crop of a narrow digit, what runs its height is the digit (a 1), not a rule.
    directions = (horizontal,) if narrow_crop(ink.shape) else (horizontal, vertical)
    clear = ink > LINE_LEVEL
    for along_kernel, across_kernel in directions:
        # A line is a run of clear ink as long as the kernel: with no row (column) holding that
        # much clear ink, there is none this way, and the two openings are skipped.
        axis, length = (1, along_kernel[0]) if along_kernel[1] == 1 else (0, along_kernel[1])
        if not (np.count_nonzero(clear, axis=axis) >= length).any():
            continue
        # Outside the frame counts as no ink; OpenCV's default border would let any stroke that
        # touches the edge pass for a long line.
        along = _open(ink, along_kernel)
        # A digit's own long bar (a big 7) is thicker than a printed line: keep what is thick.
        found[axis] = cv2.subtract(along, _open(along, across_kernel))
    if page and found:
        found = _rules_past_the_rest(found, ink)
    found = {axis: _without_box_edges(lines, clear, axis) for axis, lines in found.items()}
    if not found or not (lines := _strongest(found.values())).any():
        return ink, False
    # Lines are blurred a pixel or two wider than the opening keeps.
    lines = cv2.dilate(lines, np.ones((3, 3), np.uint8))
    # Texture and noise never survive a long opening (it keeps a run's minimum), so any clear
    # level left means a real line.
    return cv2.subtract(ink, lines), bool((lines > LINE_LEVEL).any())


def _without_box_edges(lines: np.ndarray, clear: np.ndarray, axis: int) -> np.ndarray:
    """The lines found along ``axis`` (1: across, 0: down), less the edges of boxes (a form's
    field drawn around a digit): a rule runs on across the sheet, where a box's edge turns a
    corner at both ends, into a side at least as long as a rule is thick. The box then stays
    whole, and the candidates stage refuses it; with its sides taken away, its top and bottom
    would stay, bars that join the digit (a 9 read as a 5)."""
    if axis == 0:  # down: the same question of the picture turned on its side
        return np.ascontiguousarray(_without_box_edges(
            np.ascontiguousarray(lines.T), np.ascontiguousarray(clear.T), 1).T)
    n, labels, stats = components((lines > LINE_LEVEL).astype(np.uint8))
    edges = [i for i in range(1, n)
             if _turns_at_both_ends(clear, *(int(v) for v in stats[i, :4]))]
    if not edges:
        return lines
    return np.where(np.isin(labels, edges), 0, lines).astype(lines.dtype)


def _turns_at_both_ends(clear: np.ndarray, x: int, y: int, w: int, thickness: int) -> bool:
    """Whether clear ink leaves both ends of the line (x, y, w, thickness) upwards or downwards
    all the way for a few rules' thickness: a box's corners."""
    reach = 3 * LINE_MAX_THICKNESS
    parts = (clear[max(0, y - reach) : y], clear[y + thickness : y + thickness + reach])
    ends = (slice(x, x + LINE_MAX_THICKNESS), slice(max(x, x + w - LINE_MAX_THICKNESS), x + w))
    return all(any(len(part) == reach and part[:, end].any(axis=1).all() for part in parts)
               for end in ends)


def _strongest(images: Iterable[np.ndarray]) -> np.ndarray:
    return functools.reduce(cv2.max, images)


def _rules_past_the_rest(found: dict[int, np.ndarray], ink: np.ndarray) -> dict[int, np.ndarray]:
    """Of the lines found along each axis, those that run past the rest of the ink (all but
    the lines) at both ends by more than a rule's thickness."""
    strong = cv2.compare(_strongest(found.values()), LINE_LEVEL, cv2.CMP_GT)
    if not strong.any():  # no real line, only the faint trace of a long stroke's edge
        return found
    # What is not near a line: a line's soft edges and the steps of a slanted one are its own.
    near = cv2.dilate(strong, np.ones((5, 5), np.uint8))
    rest = (ink > LINE_LEVEL) & (near == 0)
    rules = {}
    for axis, image in found.items():
        extent = np.flatnonzero(rest.any(axis=1 - axis))  # the rest's columns (rows)
        if not extent.size:  # nothing but lines: blank ruled paper
            rules[axis] = image
            continue
        _, labels, stats = components((image > LINE_LEVEL).astype(np.uint8))
        start = stats[:, cv2.CC_STAT_LEFT if axis == 1 else cv2.CC_STAT_TOP]
        end = start + stats[:, cv2.CC_STAT_WIDTH if axis == 1 else cv2.CC_STAT_HEIGHT]
        past = (start < extent[0] - LINE_MAX_THICKNESS) & (end > extent[-1] + LINE_MAX_THICKNESS)
        past[0] = False
        rules[axis] = np.where(np.take(past, labels), image, 0).astype(image.dtype)
    return rules
