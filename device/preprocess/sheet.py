"""Where the sheet is: the region of paper that stands out from what surrounds it (a table, a
hand), and the shapes of outlines that tell a sheet's edge from a shadow's."""

from __future__ import annotations

import cv2
import numpy as np

from device.preprocess.measure import median, percentiles, stroke_width

# A sheet that limits the search covers more than this share of the picture, and less than
# all but this share (paper_region, light_sheet).
SHEET_SHARE = 0.1
# A sheet's surroundings have at most this share of its light (stands_out).
SURROUNDINGS_LIGHT = 0.9
# An outline whose points spread across their main axis by under this share of their spread
# along it is one straight line (turns_a_corner): a line's is a pixel in dozens, an L's a third.
STRAIGHT_SPREAD = 0.15


def paper_region(smooth: np.ndarray) -> np.ndarray:
    """The sheet (bool mask) on the stroke-free ground of a small copy of the frame (strokes
    closed away, close_strokes): the bright region reachable from its brightest central part
    without crossing a sharp step (a sheet's edge, a hand, a table); smooth shadows and
    gradients do not stop it, and what is left of the strokes are holes that get filled. The
    whole frame when no sheet stands out (a close-up of paper, a scan)."""
    h, w = smooth.shape
    centre = smooth[h // 4 : h - h // 4, w // 4 : w - w // 4]
    y, x = np.unravel_index(int(np.argmax(centre)), centre.shape)
    seed = (int(x) + w // 4, int(y) + h // 4)
    tolerance = max(2, int(0.03 * smooth[seed[1], seed[0]]))  # per pixel step at this scale
    fill = np.zeros((h + 2, w + 2), np.uint8)
    flags = 8 | cv2.FLOODFILL_MASK_ONLY | (255 << 8)
    cv2.floodFill(smooth, fill, seed, 0, tolerance, tolerance, flags)
    region = fill[1:-1, 1:-1] > 0
    # The holes (the ink) filled: outside is what the frame border reaches.
    outside = 1 - filled(region.astype(np.uint8))
    # The surroundings of a sheet run along the frame's edge; ink that reaches the edge (a
    # digit written up to the edge of a scan) touches it only briefly and belongs to the sheet.
    n, labels = cv2.connectedComponents(outside, connectivity=8)
    edge = np.concatenate((labels[0, :], labels[-1, :], labels[:, 0], labels[:, -1]))
    contact = np.bincount(edge, minlength=n)
    surroundings = contact >= 0.1 * len(edge)
    surroundings[0] = False
    for i in np.flatnonzero(surroundings):  # and are wide, where a stroke is thin
        surroundings[i] = stroke_width(labels == i) >= 0.1 * min(h, w)
    region = np.take(~surroundings, labels)
    # Only a sheet that stands out from its surroundings limits the search.
    if not SHEET_SHARE < np.count_nonzero(region) / region.size < 1 - SHEET_SHARE:
        return np.ones_like(region)
    if not stands_out(smooth[region], smooth[~region]):
        return np.ones_like(region)
    # Stay off the sheet's edge and its shadow.
    return cv2.erode(region.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)


def stands_out(sheet: np.ndarray, surroundings: np.ndarray) -> bool:
    """Whether a sheet stands out from its surroundings (their shades on the stroke-free
    ground): they are darker, under SURROUNDINGS_LIGHT of the sheet's light, and one surface,
    as a table or a shadow is: the middle half of their shades spread less than the step from
    them to the sheet. What a bold digit cuts off of a close crop's paper, beside its strokes,
    is no one surface."""
    paper = median(sheet)
    low, middle, high = percentiles(surroundings, (25, 50, 75))
    return middle <= SURROUNDINGS_LIGHT * paper and high - low < paper - middle


def outline(shape: np.ndarray) -> np.ndarray:
    """The shape's outline (bool) within the picture: where the frame cuts it is no edge of it
    (erosion counts outside the frame as more of the shape)."""
    shape = shape.astype(np.uint8)
    return cv2.subtract(shape, cv2.erode(shape, np.ones((3, 3), np.uint8))) > 0


def turns_a_corner(rim: np.ndarray) -> bool:
    """Whether an outline (bool) is more than one straight line: its points spread across their
    main axis by at least STRAIGHT_SPREAD of their spread along it. A sheet's outline turns
    its corners; a shadow's edge, or the lit side of a board, runs straight across."""
    ys, xs = np.nonzero(rim)
    if len(xs) < 3:
        return False
    across, along = np.linalg.eigvalsh(np.cov(xs.astype(np.float32), ys.astype(np.float32)))
    return bool(np.sqrt(max(across, 0.0)) >= STRAIGHT_SPREAD * np.sqrt(max(along, 1e-6)))


def filled(shape: np.ndarray) -> np.ndarray:
    """A shape (uint8 0/1) with its holes filled: whatever the outside cannot reach from beyond
    the frame (4-connected, so a diagonal gap in the shape's outline does not let it in)."""
    h, w = shape.shape
    reach = np.zeros((h + 4, w + 4), np.uint8)
    outside = cv2.copyMakeBorder(1 - shape, 1, 1, 1, 1, cv2.BORDER_CONSTANT, value=1)
    cv2.floodFill(outside, reach, (0, 0), 0, 0, 0, 4 | cv2.FLOODFILL_MASK_ONLY | (1 << 8))
    return 1 - reach[2:-2, 2:-2]
