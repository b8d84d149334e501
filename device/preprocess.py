"""From a camera frame to MNIST-style 28×28 inputs, one per digit, left to right.

MNIST digits are white strokes on black, the longer side fitted to 20 px with anti-aliasing,
padded to 28×28 and shifted so the centre of mass is in the middle. A camera frame is nothing
like that: uneven light, paper texture, either ink polarity, lines, specks and several digits.
This module bridges the two; every threshold is relative to the frame or to the stroke width,
so no number here is tuned to one data set.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from device.sidecar import ModelError

CANVAS = 28
DIGIT_BOX = 20
# MNIST strokes are about 2.5 px wide at 28×28 (measured on the training digits); thin pen
# strokes on a large photo would shrink to a hairline, so strokes are grown toward this width.
MNIST_STROKE_PX = 2.5
MAX_WORK_SIDE = 640  # frames are searched at most this large; boxes map back to full size


@dataclass
class Candidate:
    box: tuple[int, int, int, int]  # x, y, w, h in full-frame pixel coordinates
    input: np.ndarray  # (28, 28, 1) float32 in [0, 1], ready for DigitModel


@dataclass
class Extraction:
    candidates: list[Candidate]  # left to right
    gray: np.ndarray  # the grayscale (ROI-cropped) image that was searched
    mask: np.ndarray  # the binary threshold mask (uint8 0/255), same size as gray
    reason: str | None  # why nothing was found (None when candidates exist)


@dataclass
class _Blob:
    x: int
    y: int
    w: int
    h: int
    labels: list[int]

    @property
    def x2(self) -> int:
        return self.x + self.w

    @property
    def y2(self) -> int:
        return self.y + self.h

    def merged(self, other: _Blob) -> _Blob:
        x, y = min(self.x, other.x), min(self.y, other.y)
        x2, y2 = max(self.x2, other.x2), max(self.y2, other.y2)
        return _Blob(x, y, x2 - x, y2 - y, self.labels + other.labels)


def to_gray(frame: np.ndarray) -> np.ndarray:
    """(H,W) or (H,W,1|3|4) uint8 → (H,W) uint8. Raises ValueError on anything else."""
    if not isinstance(frame, np.ndarray) or frame.size == 0:
        raise ValueError("frame is empty or not an image array")
    if frame.dtype != np.uint8:
        raise ValueError(f"frame must be uint8, got {frame.dtype}")
    if frame.ndim == 2:
        return frame
    if frame.ndim == 3 and frame.shape[2] == 1:
        return frame[:, :, 0]
    if frame.ndim == 3 and frame.shape[2] == 3:
        return cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)
    if frame.ndim == 3 and frame.shape[2] == 4:
        return cv2.cvtColor(frame, cv2.COLOR_BGRA2GRAY)
    raise ValueError(f"frame has shape {frame.shape}; expected (H,W) gray or (H,W,3) BGR")


def crop_roi(
    gray: np.ndarray, roi: tuple[float, float, float, float] | None
) -> tuple[np.ndarray, tuple[int, int]]:
    """Crop by (x, y, w, h) given as fractions of the frame; returns the crop and its offset."""
    if roi is None:
        return gray, (0, 0)
    fx, fy, fw, fh = roi
    if not (0 <= fx < 1 and 0 <= fy < 1 and 0 < fw <= 1 and 0 < fh <= 1):
        raise ValueError(f"roi {roi} must be fractions: 0 <= x,y < 1 and 0 < w,h <= 1")
    h, w = gray.shape
    x0, y0 = int(fx * w), int(fy * h)
    x1, y1 = min(w, round((fx + fw) * w)), min(h, round((fy + fh) * h))
    if x1 - x0 < 8 or y1 - y0 < 8:
        raise ValueError(f"roi {roi} leaves less than 8×8 pixels of a {w}×{h} frame")
    return gray[y0:y1, x0:x1], (x0, y0)


def _odd(n: float) -> int:
    n = max(3, int(n))
    return n if n % 2 else n + 1


def ink_is_dark(gray: np.ndarray) -> bool:
    """Dark ink on light paper (True) or light strokes on a dark ground (False).

    The ground covers most of the frame, so the median sits in it and the ink is the long tail:
    whichever side of the median reaches further is the ink.
    """
    lo, med, hi = np.percentile(gray, (0.5, 50, 99.5))
    return (med - lo) >= (hi - med)


def ink_map(gray: np.ndarray) -> np.ndarray:
    """Ink strength 0..255 relative to the local paper brightness (flat-field corrected).

    The paper is estimated by closing away the strokes on a small copy; dividing by it removes
    gradients, shadows and vignetting, so one threshold works across the frame.
    """
    h, w = gray.shape
    paper_like = gray if ink_is_dark(gray) else 255 - gray
    small_scale = min(1.0, 160 / max(h, w))
    small = cv2.resize(
        paper_like, None, fx=small_scale, fy=small_scale, interpolation=cv2.INTER_AREA
    )
    # Wider than any stroke (strokes are at most ~1/10 of a digit, digits at most the frame).
    k = _odd(min(small.shape) / 5)
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k))
    paper = cv2.morphologyEx(small, cv2.MORPH_CLOSE, kernel)
    paper = cv2.GaussianBlur(paper, (k, k), 0)
    paper = cv2.resize(paper, (w, h), interpolation=cv2.INTER_LINEAR).astype(np.float32)
    smooth = cv2.GaussianBlur(paper_like, (3, 3), 0).astype(np.float32)
    contrast = (paper - smooth) / np.maximum(paper, 16.0)
    return np.clip(contrast * 255.0, 0, 255).astype(np.uint8)


def threshold_ink(ink: np.ndarray) -> np.ndarray:
    """Hysteresis threshold: Otsu's level for sure ink, half of it to follow faint strokes.

    A floor above the paper's own texture keeps blank paper blank (Otsu alone always splits).
    """
    median = float(np.median(ink))
    spread = float(np.median(np.abs(ink.astype(np.float32) - median)))
    floor = max(40.0, median + 8.0 * spread)
    otsu, _ = cv2.threshold(ink, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    strong_level = max(float(otsu), floor)
    weak_level = max(strong_level * 0.5, floor * 0.75)
    weak = (ink > weak_level).astype(np.uint8)
    n, labels = cv2.connectedComponents(weak, connectivity=8)
    if n <= 1:
        return np.zeros_like(ink)
    strong_labels = np.unique(labels[ink > strong_level])
    keep = np.zeros(n, dtype=bool)
    keep[strong_labels] = True
    keep[0] = False
    return (keep[labels] * 255).astype(np.uint8)


def remove_ruled_lines(mask: np.ndarray) -> tuple[np.ndarray, bool]:
    """Remove straight lines spanning most of the frame (ruled paper, grid); True if any."""
    h, w = mask.shape
    horizontal = cv2.morphologyEx(
        mask, cv2.MORPH_OPEN, cv2.getStructuringElement(cv2.MORPH_RECT, (max(15, int(w * 0.6)), 1))
    )
    vertical = cv2.morphologyEx(
        mask, cv2.MORPH_OPEN, cv2.getStructuringElement(cv2.MORPH_RECT, (1, max(15, int(h * 0.85))))
    )
    lines = cv2.dilate(cv2.bitwise_or(horizontal, vertical), np.ones((3, 3), np.uint8))
    if not lines.any():
        return mask, False
    return cv2.bitwise_and(mask, cv2.bitwise_not(lines)), True


def stroke_width(mask: np.ndarray) -> float:
    """Mean stroke width of a binary shape: twice the mean distance-to-edge along its ridge."""
    if not mask.any():
        return 0.0
    dist = cv2.distanceTransform((mask > 0).astype(np.uint8), cv2.DIST_L2, 3)
    ridge = (dist >= cv2.dilate(dist, np.ones((3, 3), np.uint8))) & (dist > 0)
    return float(2.0 * np.median(dist[ridge]))


def _components(mask: np.ndarray) -> tuple[np.ndarray, list[_Blob]]:
    n, labels, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
    blobs = [
        _Blob(int(stats[i, 0]), int(stats[i, 1]), int(stats[i, 2]), int(stats[i, 3]), [i])
        for i in range(1, n)
    ]
    return labels, blobs


def _overlap_x(a: _Blob, b: _Blob) -> float:
    """Horizontal overlap as a fraction of the narrower blob's width."""
    overlap = min(a.x2, b.x2) - max(a.x, b.x)
    return overlap / max(1, min(a.w, b.w))


def merge_broken(blobs: list[_Blob]) -> list[_Blob]:
    """Join pieces of one digit (a 5's loose top bar, a 4 with a gap): pieces that share most
    of their horizontal extent and sit close vertically. Side-by-side digits barely overlap."""
    groups = sorted(blobs, key=lambda b: b.x)
    merged = True
    while merged:
        merged = False
        for i in range(len(groups)):
            for j in range(i + 1, len(groups)):
                a, b = groups[i], groups[j]
                gap_y = max(a.y, b.y) - min(a.y2, b.y2)
                if _overlap_x(a, b) >= 0.5 and gap_y <= 0.5 * max(a.h, b.h):
                    groups[i] = a.merged(b)
                    del groups[j]
                    merged = True
                    break
            if merged:
                break
    return sorted(groups, key=lambda b: b.x)


def _border_contact(labels: np.ndarray, blob: _Blob) -> tuple[int, int]:
    """How many frame sides the blob touches, and how many of its pixels lie on them."""
    h, w = labels.shape
    ids = np.array(blob.labels)
    sides = (labels[0, :], labels[h - 1, :], labels[:, 0], labels[:, w - 1])
    contact = [int(np.isin(side, ids).sum()) for side in sides]
    return sum(c > 0 for c in contact), sum(contact)


def _adjust_stroke(piece: np.ndarray, scale: float) -> np.ndarray:
    """Grow thin strokes (and thin very thick ones) so that after scaling they are MNIST-wide."""
    width_after = stroke_width(piece) * scale
    if width_after < MNIST_STROKE_PX * 0.8:
        grow = round((MNIST_STROKE_PX - width_after) / scale / 2)
        if grow > 0:
            k = 2 * grow + 1
            return cv2.dilate(piece, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k)))
    elif width_after > MNIST_STROKE_PX * 1.8:
        shrink = round((width_after - MNIST_STROKE_PX * 1.4) / scale / 2)
        if shrink > 0:
            k = 2 * shrink + 1
            thinner = cv2.erode(piece, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k)))
            if cv2.connectedComponents(thinner)[0] == cv2.connectedComponents(piece)[0]:
                return thinner  # only when erosion does not break the digit apart
    return piece


def render_mnist(piece: np.ndarray) -> np.ndarray:
    """A binary digit crop (uint8 0/255) → (28,28,1) float32 white-on-black, MNIST-style."""
    scale = DIGIT_BOX / max(piece.shape)
    pad = 2 + int(MNIST_STROKE_PX / scale)  # room for the strokes to grow
    piece = cv2.copyMakeBorder(piece, pad, pad, pad, pad, cv2.BORDER_CONSTANT, value=0)
    piece = _adjust_stroke(piece, scale)
    ys, xs = np.nonzero(piece)
    if len(ys) == 0:
        return np.zeros((CANVAS, CANVAS, 1), np.float32)
    piece = piece[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1]
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


def _reject_reason(
    blob: _Blob, labels: np.ndarray, frame_w: int, frame_h: int, stroke: float
) -> str | None:
    """Why a merged blob cannot be a digit, or None if it can."""
    if blob.w > 4 * blob.h:
        return "line"
    sides, contact = _border_contact(labels, blob)
    # A stroke tip clipped by the frame edge is fine; a long contact is a paper edge, a grid
    # line, a hand, or a digit too cut off to read.
    if sides >= 2 or contact > 3 * max(stroke, 2.0):
        return "border"
    if blob.w > 0.9 * frame_w or blob.h > 0.97 * frame_h:
        return "border"
    return None


REASONS = {
    "ink": "no ink found: the frame looks like blank paper or an empty scene",
    "speck": "only specks: marks too small to be a digit",
    "line": "only lines (ruled paper, grid or edges), no digit",
    "border": "all candidates touch the border: move the digit into the middle of the frame",
    "small": "only small marks next to nothing digit-sized",
}


def extract_digits(
    frame: np.ndarray,
    preprocessing: dict | None = None,
    roi: tuple[float, float, float, float] | None = None,
) -> Extraction:
    """Find the digits in a frame and turn each into an MNIST-style model input.

    ``preprocessing`` is the sidecar's contract; this pipeline produces exactly what it asks
    (light-on-dark, [0,1], 28 canvas, 20 box, centre of mass) and refuses anything else.
    """
    check_contract(preprocessing or {})
    gray, (ox, oy) = crop_roi(to_gray(frame), roi)
    h, w = gray.shape
    scale = min(1.0, MAX_WORK_SIDE / max(h, w))
    work = gray if scale == 1.0 else cv2.resize(
        gray, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA
    )
    wh, ww = work.shape
    mask, had_lines = remove_ruled_lines(threshold_ink(ink_map(work)))
    full_mask = mask if scale == 1.0 else cv2.resize(mask, (w, h), interpolation=cv2.INTER_NEAREST)

    def nothing(reason: str) -> Extraction:
        return Extraction([], gray, full_mask, REASONS[reason])

    labels, blobs = _components(mask)
    if not blobs:
        return nothing("line" if had_lines else "ink")
    speck_side = max(3.0, 0.03 * min(wh, ww))
    blobs = [b for b in blobs if max(b.w, b.h) >= speck_side]
    if not blobs:
        return nothing("speck")
    stroke = stroke_width(mask)
    groups = merge_broken(blobs)
    rejected: dict[str, int] = {}
    digits = []
    for g in groups:
        why = _reject_reason(g, labels, ww, wh, stroke)
        if why:
            rejected[why] = rejected.get(why, 0) + 1
        else:
            digits.append(g)
    if not digits:
        return nothing(max(rejected, key=rejected.get))
    tallest = max(g.h for g in digits)
    min_height = max(10.0, 0.08 * min(wh, ww), 0.4 * tallest)
    digits = [g for g in digits if g.h >= min_height]
    if not digits:
        return nothing("small" if tallest >= speck_side else "speck")
    candidates = []
    for g in digits:
        crop = labels[g.y : g.y2, g.x : g.x2]
        piece = (np.isin(crop, g.labels) * 255).astype(np.uint8)
        box = (
            ox + int(g.x / scale),
            oy + int(g.y / scale),
            max(1, round(g.w / scale)),
            max(1, round(g.h / scale)),
        )
        candidates.append(Candidate(box=box, input=render_mnist(piece)))
    return Extraction(candidates, gray, full_mask, None)


_CONTRACT = {
    "polarity": "light_on_dark",
    "value_range": [0, 1],
    "canvas": CANVAS,
    "digit_box": DIGIT_BOX,
    "centering": "center_of_mass",
}


def check_contract(preprocessing: dict) -> None:
    """Refuse a model whose sidecar asks for inputs this pipeline does not make."""
    for key, expected in _CONTRACT.items():
        if key in preprocessing and preprocessing[key] != expected:
            raise ModelError(
                f"the model expects preprocessing {key}={preprocessing[key]!r}, but this device "
                f"produces {expected!r}; use a model exported for MNIST-style inputs"
            )
