"""A digit's ink as MNIST made its digits: strokes ~2.2 px wide, the longer side fitted to 20 px
with anti-aliasing, padded to 28×28 and centred by centre of mass."""

from __future__ import annotations

import cv2
import numpy as np

from device.preprocess.candidates import Blob
from device.preprocess.measure import disk, median, stroke_width

# A line along a digit's bottom spans at least this share of the digit's box (bottom_line):
# an underline reaches past the digit, so it spans all of the box. Set before measuring, not
# tuned: validation pictures only confirmed it.
UNDERLINE_SPAN = 0.8
SOFT_EDGE_ROWS = 2  # px of a blurred edge, at the working scale
CANVAS = 28
DIGIT_BOX = 20
# MNIST strokes are about 2.2 px wide at 28×28 (2A/P of test digits binarised at 50%); thin pen
# strokes on a large photo would shrink to a hairline, so strokes are grown toward this width.
MNIST_STROKE_PX = 2.2


def _loops(piece: np.ndarray, min_area: int) -> int:
    """How many holes of at least ``min_area`` px the shape (ink > 50%) encloses."""
    contours, hierarchy = cv2.findContours(
        (piece > 127).astype(np.uint8), cv2.RETR_CCOMP, cv2.CHAIN_APPROX_SIMPLE
    )
    if hierarchy is None:
        return 0
    return sum(
        1
        for contour, (_, _, _, parent) in zip(contours, hierarchy[0], strict=True)
        if parent >= 0 and cv2.contourArea(contour) >= min_area
    )


def _adjust_stroke(piece: np.ndarray, scale: float) -> np.ndarray:
    """Grow thin strokes (and thin very thick ones) so that after scaling they are MNIST-wide."""
    width_after = stroke_width(piece > 127) * scale
    if width_after < MNIST_STROKE_PX * 0.8:
        grow = round((MNIST_STROKE_PX - width_after) / scale / 2)
        loops = _loops(piece, min_area=(2 * grow) ** 2)
        # Grow as far as wanted, but never so far that a loop (a 6's, a narrow 0's) fills in.
        for g in range(grow, 0, -1):
            grown = cv2.dilate(piece, disk(2 * g + 1))
            if _loops(grown, min_area=1) >= loops:
                return grown
    elif width_after > MNIST_STROKE_PX * 1.8:
        shrink = round((width_after - MNIST_STROKE_PX * 1.4) / scale / 2)
        if shrink > 0:
            k = 2 * shrink + 1
            thinner = cv2.erode(piece, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k)))
            pieces_before = cv2.connectedComponents((piece > 127).astype(np.uint8))[0]
            if cv2.connectedComponents((thinner > 127).astype(np.uint8))[0] == pieces_before:
                return thinner  # only when erosion does not break the digit apart
    return piece


def render_mnist(piece: np.ndarray) -> np.ndarray:
    """A digit's ink (uint8, 255 = full ink) → (28,28,1) float32 white-on-black, MNIST-style."""
    scale = DIGIT_BOX / max(piece.shape)
    pad = 2 + int(MNIST_STROKE_PX / scale)  # room for the strokes to grow
    piece = cv2.copyMakeBorder(piece, pad, pad, pad, pad, cv2.BORDER_CONSTANT, value=0)
    piece = _adjust_stroke(piece, scale)
    x, y, w, h = cv2.boundingRect(piece)  # of the nonzero pixels
    if w == 0:
        return np.zeros((CANVAS, CANVAS, 1), np.float32)
    piece = piece[y : y + h, x : x + w]
    h, w = piece.shape
    scale = DIGIT_BOX / max(h, w)
    new_w, new_h = max(1, round(w * scale)), max(1, round(h * scale))
    small = cv2.resize(
        piece.astype(np.float32) / 255.0, (new_w, new_h), interpolation=cv2.INTER_AREA
    )
    canvas = np.zeros((CANVAS, CANVAS), np.float32)
    y0, x0 = (CANVAS - new_h) // 2, (CANVAS - new_w) // 2
    canvas[y0 : y0 + new_h, x0 : x0 + new_w] = small
    total = float(canvas.sum())
    if total > 0:
        grid_y, grid_x = np.indices(canvas.shape)
        cy, cx = (grid_y * canvas).sum() / total, (grid_x * canvas).sum() / total
        shift = np.float32([[1, 0, (CANVAS - 1) / 2 - cx], [0, 1, (CANVAS - 1) / 2 - cy]])
        canvas = cv2.warpAffine(canvas, shift, (CANVAS, CANVAS), flags=cv2.INTER_LINEAR)
    return np.clip(canvas, 0.0, 1.0)[..., np.newaxis]


def ink_piece(ink: np.ndarray, labels: np.ndarray, blob: Blob) -> np.ndarray:
    """The blob's own ink, grey levels kept (soft stroke edges like MNIST's anti-aliasing),
    scaled so the stroke core is full white; other marks in its box are left out."""
    h, w = ink.shape
    x0, y0 = max(0, blob.x - 2), max(0, blob.y - 2)
    x1, y1 = min(w, blob.x2 + 2), min(h, blob.y2 + 2)
    crop_labels = labels[y0:y1, x0:x1]
    own = blob.owns(crop_labels)
    near = cv2.dilate(own.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)
    near &= (crop_labels == 0) | own
    crop = ink[y0:y1, x0:x1]
    core = max(median(crop[own]), 1.0)  # of the 8-bit shades: counted, not sorted
    values = crop.astype(np.float32)
    return (np.clip(values / core, 0.0, 1.0) * near * 255).astype(np.uint8)


def bottom_line(piece: np.ndarray, stroke: float) -> int | None:
    """Where a straight line along the bottom of a digit's ink piece starts (its first row),
    or None: the lowest rows (below them only the line's blurred edge), together no thicker
    than two strokes, each crossed by one run of ink at least UNDERLINE_SPAN of the ink wide,
    with more ink above them. An underline that blur joined to the digit looks so; so does a
    2's flat foot (reaches_past tells them apart where it can)."""
    ink = (piece > 127).astype(np.uint8)
    rows = np.flatnonzero(ink.any(axis=1))
    if len(rows) < 2:
        return None
    columns = np.flatnonzero(ink.any(axis=0))
    span = int(np.ceil(UNDERLINE_SPAN * (columns[-1] - columns[0] + 1)))
    # A row holds a run that long where an erosion that long leaves some of it (as ink.py
    # finds ruled lines); beyond the piece counts as no ink.
    long_run = cv2.erode(ink, np.ones((1, span), np.uint8), borderType=cv2.BORDER_CONSTANT,
                         borderValue=0).any(axis=1)
    lines = np.flatnonzero(long_run)
    # Below the line only its own soft lower edge may hold ink: a row or two where blur left a
    # few pixels past half the ink's strength, short of a long run.
    if not len(lines) or rows[-1] - lines[-1] > SOFT_EDGE_ROWS:
        return None
    bottom = lines[-1]
    short = np.flatnonzero(~long_run[: bottom + 1])
    top = short[-1] + 1 if len(short) else 0
    if top > bottom or bottom - top + 1 > 2 * stroke or top <= rows[0]:
        return None
    return int(top)


def reaches_past(piece: np.ndarray, top: int, by: float) -> bool:
    """Whether the line along a piece's bottom (from row ``top``, bottom_line) reaches more
    than ``by`` px past the ink above it on both sides. An underline reaches past the digit;
    a 2's flat foot starts where the 2's stroke comes down, so it does not on that side."""
    ink = piece > 127
    above = np.flatnonzero(ink[: max(0, top - 1)].any(axis=0))
    line = np.flatnonzero(ink[top:].any(axis=0))
    if not len(above) or not len(line):
        return False
    return bool(line[0] < above[0] - by and line[-1] > above[-1] + by)


def without_bottom_line(piece: np.ndarray, top: int) -> np.ndarray:
    """The piece with everything from a row above the line's first down cleared (the line's
    soft upper edge goes too)."""
    piece = piece.copy()
    piece[max(0, top - 1) :] = 0
    return piece


def as_model_input(gray: np.ndarray) -> tuple[np.ndarray, tuple[int, int, int, int]] | None:
    """The picture itself and its ink's box, when it already is what render_mnist makes (an
    MNIST file, either polarity): 28×28, one exact ground shade, the edge's, over at least half
    of it, the ink's longer side fitted to the 20 px box and its centre of mass within a pixel
    of the middle. Searching and re-rendering such a picture would only blur it, at most of a
    28×28 upload's cost. None for any other picture."""
    if gray.shape != (CANVAS, CANVAS):
        return None
    edge = np.concatenate((gray[0], gray[-1], gray[:, 0], gray[:, -1]))
    ground = int(np.argmax(np.bincount(edge)))
    if np.count_nonzero(gray == ground) < gray.size / 2:
        return None
    light_ink = ground < 128
    ink = cv2.subtract(gray, ground) if light_ink else cv2.subtract(np.full_like(gray, ground),
                                                                    gray)
    box = cv2.boundingRect(ink)
    if max(box[2:]) not in (DIGIT_BOX - 1, DIGIT_BOX):
        return None
    moments = cv2.moments(ink)
    middle = (CANVAS - 1) / 2
    cx, cy = moments["m10"] / moments["m00"], moments["m01"] / moments["m00"]
    if max(abs(cx - middle), abs(cy - middle)) > 1.0:
        return None
    contrast = np.float32(255 - ground if light_ink else ground)
    return (ink / contrast)[..., np.newaxis], box
