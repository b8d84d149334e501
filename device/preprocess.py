"""From a camera frame to MNIST-style 28×28 inputs, one per digit, left to right.

MNIST digits are white strokes on black, the longer side fitted to 20 px with anti-aliasing,
padded to 28×28 and shifted so the centre of mass is in the middle. A camera frame is nothing
like that: uneven light, paper texture, either ink polarity, lines, specks and several digits.
This module bridges the two; every threshold is relative to the frame or to the stroke width,
so no number here is tuned to one data set.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

import cv2
import numpy as np

from device.sidecar import ModelError

CANVAS = 28
DIGIT_BOX = 20
# MNIST strokes are about 2.2 px wide at 28×28 (2A/P of test digits binarised at 50%); thin pen
# strokes on a large photo would shrink to a hairline, so strokes are grown toward this width.
MNIST_STROKE_PX = 2.2
# Printed rules and grid lines are at most this thick (px, in the searched image); a digit
# large enough to have a bar across half the frame has thicker strokes than that.
LINE_MAX_THICKNESS = 6
MAX_WORK_SIDE = 640  # frames are searched at most this large; boxes map back to full size
# ...and at least this large: an MNIST file (28×28) or a USPS digit (16×16) is enlarged so that
# its strokes are several pixels wide, as they are in any photo, and every stage sees one scale.
MIN_WORK_SIDE = 160
# A picture whose ground is one exact shade (±1) over this share of it is clean (not a photo).
CLEAN_GROUND_SHARE = 0.3
# The ground is continued this share of the picture's longer side beyond its edges (ink_map).
GROUND_MARGIN = 0.25


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
    # joins[i]: candidates i and i+1 taken as one digit. Offered when two pieces sit so close
    # that they may be one digit written with a gap (a 4 whose stem does not meet its bar);
    # the reader keeps whichever reading the model is more confident of.
    joins: dict[int, Candidate] = field(default_factory=dict)


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


def working_scale(h: int, w: int) -> float:
    """How much a picture is scaled before it is searched (1.0 when it is already in range)."""
    longer = max(h, w)
    if longer > MAX_WORK_SIDE:
        return MAX_WORK_SIDE / longer
    if longer < MIN_WORK_SIDE:
        return MIN_WORK_SIDE / longer
    return 1.0


def _odd(n: float) -> int:
    n = max(3, int(n))
    return n if n % 2 else n + 1


def _small(gray: np.ndarray, side: int) -> np.ndarray:
    scale = min(1.0, side / max(gray.shape))
    return cv2.resize(gray, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)


def _disk(size: int) -> np.ndarray:
    return cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (size, size))


def ink_is_dark(small: np.ndarray) -> bool:
    """Dark ink on a light ground (True) or light strokes on a dark ground (False), judged on a
    small copy of the picture (about 160 px).

    Decided by what surrounds the strokes, not by which shade covers more of the picture:
    strokes are thin everywhere, the ground around them (paper, a board, a black canvas) is
    wide somewhere. Light strokes are assumed only when the light in the picture is far thinner
    than the dark; a light sheet on a dark table is thick too, and dark ink is the rule there,
    as on a blank picture.
    """
    small = cv2.medianBlur(small, 3)  # specks and JPEG noise are not structure
    _, light = cv2.threshold(small, 0, 1, cv2.THRESH_BINARY + cv2.THRESH_OTSU)

    # Paper texture or light falling off, split in two, is no light ink: strokes stand out
    # from their ground.
    if light.all() or not light.any():
        return True
    if np.median(small[light > 0]) - np.median(small[light == 0]) < 48:
        return True
    # Light strokes on a dark ground are at most half as thick as that ground (0.48 at most on
    # MNIST-derived pictures); a sheet is more than twice as thick as its ink (2.4 at least
    # on camera-like frames).
    return not thickness(light) < 0.5 * thickness(1 - light)


def thickness(mask: np.ndarray) -> float:
    """How thick the largest shape of a binary mask is for its size: the widest inscribed
    circle's radius over the shape's longer side. About 0.1 for a digit's strokes, 0.3 for a
    sheet of paper or the ground around a digit."""
    n, labels, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
    if n <= 1:
        return 0.0
    largest = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
    shape = (labels == largest).astype(np.uint8)
    # Outside the picture counts as more of the same: a stroke running off the edge stays thin.
    padded = cv2.copyMakeBorder(shape, 1, 1, 1, 1, cv2.BORDER_REPLICATE)
    radius = float(cv2.distanceTransform(padded, cv2.DIST_L2, 3).max())
    return radius / max(stats[largest, cv2.CC_STAT_WIDTH], stats[largest, cv2.CC_STAT_HEIGHT])


def paper_region(small: np.ndarray) -> np.ndarray:
    """The sheet (bool mask) on a small copy of the frame: the bright region reachable from its
    brightest central part without crossing a sharp step (a sheet's edge, a hand, a table);
    smooth shadows and gradients do not stop it, and the strokes on the sheet are holes that
    get filled. The whole frame when no sheet stands out (a close-up of paper, a scan)."""
    h, w = small.shape
    smooth = cv2.medianBlur(small, 5)  # thin strokes out of the way of the seed
    centre = smooth[h // 4 : h - h // 4, w // 4 : w - w // 4]
    y, x = np.unravel_index(int(np.argmax(centre)), centre.shape)
    seed = (int(x) + w // 4, int(y) + h // 4)
    tolerance = max(2, int(0.03 * smooth[seed[1], seed[0]]))  # per pixel step at this scale
    fill = np.zeros((h + 2, w + 2), np.uint8)
    flags = 8 | cv2.FLOODFILL_MASK_ONLY | (255 << 8)
    cv2.floodFill(smooth, fill, seed, 0, tolerance, tolerance, flags)
    region = fill[1:-1, 1:-1] > 0
    # Fill the holes (the ink): whatever outside the sheet cannot reach from the frame border.
    outside = np.ones((h + 2, w + 2), np.uint8)  # a frame of "outside" all around
    outside[1:-1, 1:-1] = ~region
    reach = np.zeros((h + 4, w + 4), np.uint8)
    cv2.floodFill(outside, reach, (0, 0), 0, 0, 0, 4 | cv2.FLOODFILL_MASK_ONLY | (255 << 8))
    outside = (reach[2:-2, 2:-2] > 0).astype(np.uint8)
    # The surroundings of a sheet run along the frame's edge; ink that reaches the edge (a
    # digit written up to the edge of a scan) touches it only briefly and belongs to the sheet.
    n, labels = cv2.connectedComponents(outside, connectivity=8)
    edge = np.concatenate((labels[0, :], labels[-1, :], labels[:, 0], labels[:, -1]))
    contact = np.bincount(edge, minlength=n)
    surroundings = contact >= 0.1 * len(edge)
    surroundings[0] = False
    for i in np.flatnonzero(surroundings):  # and are wide, where a stroke is thin
        surroundings[i] = stroke_width(labels == i) >= 0.1 * min(h, w)
    region = ~surroundings[labels]
    # Only a sheet that clearly stands out from its surroundings limits the search.
    if not 0.1 < region.mean() < 0.9:
        return np.ones_like(region)
    if np.median(smooth[~region]) > 0.7 * np.median(smooth[region]):
        return np.ones_like(region)
    # Stay off the sheet's edge and its shadow.
    return cv2.erode(region.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)


def _close_strokes(image: np.ndarray) -> np.ndarray:
    """The ground without the strokes: a closing wider than any stroke (strokes are at most
    ~1/10 of a digit, digits at most the picture)."""
    return cv2.morphologyEx(image, cv2.MORPH_CLOSE, _disk(_odd(min(image.shape) / 5)))


def uniform_ground(pixels: np.ndarray) -> int | None:
    """The ground's level when the picture is clean (dark ink assumed): a drawing, a digital
    crop, an MNIST or USPS file, a scan saturated to white. Its ground is one exact shade over
    a large share of the picture; a photo's ground never is (sensor noise, light falling
    off), and needs flat-fielding. None when the picture is not clean."""
    histogram = np.bincount(pixels.ravel(), minlength=256)
    mode = int(np.argmax(histogram))
    share = histogram[max(0, mode - 1) : mode + 2].sum() / pixels.size
    level, _ = cv2.threshold(pixels, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    return mode if share >= CLEAN_GROUND_SHARE and mode > level else None


def _edge_shade(image: np.ndarray) -> int:
    """The shade along the picture's edge: mostly ground, whatever the strokes touch."""
    edge = np.concatenate((image[0, :], image[-1, :], image[:, 0], image[:, -1]))
    return int(np.median(edge))


def ink_map(gray: np.ndarray) -> tuple[np.ndarray, float]:
    """Ink strength 0..255 relative to the local paper brightness (flat-field corrected).

    The paper is estimated by closing away the strokes on a small copy; dividing by it removes
    gradients, shadows and vignetting, so one threshold works across the frame. Only the sheet
    is searched: a textured table or a hand around it is not ink. The small copy is first
    surrounded by a margin of the shade found along its edge: a digit that fills its picture
    (a tight crop) cuts the ground into pieces at the edge, and with the margin the ground
    surrounds the strokes as in any photo. Also returns the paper's own noise on the same
    0..255 scale (a robust sigma: dim paper makes relative noise larger).
    """
    h, w = gray.shape
    small = _small(gray, 160)
    sh, sw = small.shape
    pad = round(GROUND_MARGIN * max(sh, sw))
    probe = cv2.copyMakeBorder(small, pad, pad, pad, pad, cv2.BORDER_CONSTANT,
                               value=_edge_shade(small))
    paper_like = gray
    if not ink_is_dark(probe):
        paper_like, small = 255 - gray, 255 - small
    # Judged on the pixels themselves: shrinking the picture would average its noise away.
    if (level := uniform_ground(paper_like[::2, ::2])) is not None:
        # A clean picture (a drawing, a digital crop): one level is the ground everywhere, and
        # nothing around it but more of the picture.
        paper, region = np.full_like(small, level), np.ones(small.shape, bool)
    else:
        paper = _close_strokes(small)
        # The sheet is searched for with the stroke-free ground continued beyond the edge in
        # its own shade, so a table reaching the edge still reaches it.
        around = cv2.copyMakeBorder(paper, pad, pad, pad, pad, cv2.BORDER_REPLICATE)
        region = paper_region(around)[pad : pad + sh, pad : pad + sw]
        paper = cv2.GaussianBlur(paper, (k := _odd(min(sh, sw) / 5), k), 0)
    paper = cv2.resize(paper, (w, h), interpolation=cv2.INTER_LINEAR).astype(np.float32)
    smooth = cv2.GaussianBlur(paper_like, (3, 3), 0).astype(np.float32)
    contrast = (paper - smooth) / np.maximum(paper, 16.0)
    if not region.all():
        contrast *= cv2.resize(region.astype(np.uint8), (w, h), interpolation=cv2.INTER_NEAREST)
    _, noise = paper_statistics(contrast[::4, ::4] * 255.0)
    return np.clip(contrast * 255.0, 0, 255).astype(np.uint8), noise


def paper_statistics(values: np.ndarray) -> tuple[float, float]:
    """The paper's typical level and noise (sigma) among ``values`` that are partly ink.

    Ink only lengthens the upper tail, and fills up to half of a tight crop, where a median
    and MAD would land in the ink: the lower tail is the paper's own. For normal noise the
    10th and 30th percentiles lie 0.757 sigma apart and the median 0.524 sigma above the 30th.
    """
    low, high = np.percentile(values, (10, 30))
    sigma = float(high - low) / 0.757
    return float(high) + 0.524 * sigma, sigma


def threshold_ink(ink: np.ndarray, noise: float = 0.0) -> np.ndarray:
    """Hysteresis threshold: Otsu's level for sure ink, half of it to follow faint strokes.

    A floor above the paper's own texture and noise keeps blank paper blank (Otsu alone always
    splits).
    """
    level, spread = paper_statistics(ink[::2, ::2])  # a quarter of the pixels is plenty
    floor = max(40.0, level + 5.4 * spread, 6.0 * noise)
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


def _open(image: np.ndarray, kernel: tuple[int, int]) -> np.ndarray:
    return cv2.morphologyEx(
        image,
        cv2.MORPH_OPEN,
        cv2.getStructuringElement(cv2.MORPH_RECT, kernel),
        borderType=cv2.BORDER_CONSTANT,
        borderValue=0,
    )


def remove_ruled_lines(ink: np.ndarray) -> tuple[np.ndarray, bool]:
    """Subtract straight lines spanning most of the frame (ruled paper, grid, paper edges).

    Works on the ink strength, before thresholding: a grey-level opening with a long thin
    kernel keeps only what a line contributes, so a stroke crossing a line keeps its own ink
    and is not cut in two. Returns the cleaned ink and whether any line was found.
    """
    h, w = ink.shape
    lines = np.zeros_like(ink)
    horizontal = ((max(15, int(w * 0.5)), 1), (1, LINE_MAX_THICKNESS + 1))  # (along, across)
    vertical = ((1, max(15, int(h * 0.85))), (LINE_MAX_THICKNESS + 1, 1))
    for along_kernel, across_kernel in (horizontal, vertical):
        # Outside the frame counts as no ink; OpenCV's default border would let any stroke that
        # touches the edge pass for a long line.
        along = _open(ink, along_kernel)
        # A digit's own long bar (a big 7) is thicker than a printed line: keep what is thick.
        lines = cv2.max(lines, cv2.subtract(along, _open(along, across_kernel)))
    if not lines.any():
        return ink, False
    # Lines are blurred a pixel or two wider than the opening keeps.
    lines = cv2.dilate(lines, np.ones((3, 3), np.uint8))
    # Texture and noise never survive a long opening (it keeps a run's minimum), so any clear
    # level left means a real line.
    return cv2.subtract(ink, lines), bool((lines > 16).any())


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


def group_nearby(labels: np.ndarray, blobs: list[_Blob], reach: int) -> list[_Blob]:
    """Join pieces closer than ``reach`` px (a stroke broken by faint ink, a 4 with a gap).

    ``reach`` is a fraction of the stroke width, far less than the space between two digits.
    """
    if reach < 1 or len(blobs) < 2:
        return blobs
    ids = np.zeros(int(labels.max()) + 1, np.uint8)
    for b in blobs:
        ids[b.labels] = 1
    pieces = (ids[labels] * 255).astype(np.uint8)
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * reach + 1, 2 * reach + 1))
    _, joined = cv2.connectedComponents(cv2.dilate(pieces, kernel), connectivity=8)
    by_group: dict[int, _Blob] = {}
    for b in blobs:
        ys, xs = np.nonzero(labels[b.y : b.y2, b.x : b.x2] == b.labels[0])
        group = int(joined[b.y + ys[0], b.x + xs[0]])
        by_group[group] = by_group[group].merged(b) if group in by_group else b
    return list(by_group.values())


def merge_overlapping(blobs: list[_Blob]) -> list[_Blob]:
    """Join pieces of one digit that share most of their horizontal extent and sit close
    vertically (a 5's loose top bar). Side-by-side digits barely overlap horizontally."""
    groups = sorted(blobs, key=lambda b: b.x)
    merged = True
    while merged:
        merged = False
        for i in range(len(groups)):
            for j in range(i + 1, len(groups)):
                a, b = groups[i], groups[j]
                gap_y = max(a.y, b.y) - min(a.y2, b.y2)
                short = min(a.h, b.h) < 0.75 * max(a.h, b.h)  # a fragment, not a digit
                if short and _overlap_x(a, b) >= 0.5 and gap_y <= 0.5 * max(a.h, b.h):
                    groups[i] = a.merged(b)
                    del groups[j]
                    merged = True
                    break
            if merged:
                break
    return sorted(groups, key=lambda b: b.x)


def _border_spans(labels: np.ndarray, blob: _Blob) -> list[int]:
    """For each frame side (top, bottom, left, right), how far apart the blob's first and last
    pixels on it are (0 when it does not touch that side)."""
    h, w = labels.shape
    ids = np.array(blob.labels)
    spans = []
    for side in (labels[0, :], labels[h - 1, :], labels[:, 0], labels[:, w - 1]):
        on = np.flatnonzero(np.isin(side, ids))
        spans.append(int(on[-1] - on[0] + 1) if len(on) else 0)
    return spans


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
            grown = cv2.dilate(piece, _disk(2 * g + 1))
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


def _ink_piece(ink: np.ndarray, labels: np.ndarray, blob: _Blob) -> np.ndarray:
    """The blob's own ink, grey levels kept (soft stroke edges like MNIST's anti-aliasing),
    scaled so the stroke core is full white; other marks in its box are left out."""
    h, w = ink.shape
    x0, y0 = max(0, blob.x - 2), max(0, blob.y - 2)
    x1, y1 = min(w, blob.x2 + 2), min(h, blob.y2 + 2)
    crop_labels = labels[y0:y1, x0:x1]
    own = np.isin(crop_labels, blob.labels)
    near = cv2.dilate(own.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)
    near &= (crop_labels == 0) | own
    values = ink[y0:y1, x0:x1].astype(np.float32)
    core = max(float(np.percentile(values[own], 50)), 1.0)
    return (np.clip(values / core, 0.0, 1.0) * near * 255).astype(np.uint8)


def _reject_reason(blob: _Blob, labels: np.ndarray, stroke: float) -> str | None:
    """Why a merged blob cannot be a digit, or None if it can."""
    frame_h = labels.shape[0]
    framed = frames_the_digit(blob, labels.shape)
    if blob.w > 4 * blob.h or (blob.h > 6 * blob.w and blob.h > 0.9 * frame_h and not framed):
        return "line"
    if not framed and _cut_by_border(blob, labels, stroke):
        return "border"
    own = np.isin(labels[blob.y : blob.y2, blob.x : blob.x2], blob.labels).astype(np.uint8)
    # Handwriting is strokes: even a bold marker digit is far thinner than it is tall. A solid
    # shape (a fingertip over the sheet, a shadow, a sticker) is not.
    if stroke_width(own) > 0.3 * max(blob.w, blob.h):
        return "solid"
    return None


def frames_the_digit(blob: _Blob, shape: tuple[int, int]) -> bool:
    """The picture is this digit: a crop framed on it, so it spans the picture from edge to
    edge one way and sits in the middle the other way. A digit cut off by the frame of a camera
    scene lies against the edge instead, most of the picture beside it."""
    h, w = shape
    spans = blob.h >= 0.9 * h or blob.w >= 0.9 * w
    off_centre_x = abs(blob.x + blob.w / 2 - w / 2) / w
    off_centre_y = abs(blob.y + blob.h / 2 - h / 2) / h
    return spans and max(off_centre_x, off_centre_y) <= 0.15


def _cut_by_border(blob: _Blob, labels: np.ndarray, stroke: float) -> bool:
    """A blob the frame edge cuts through: touching an edge over a long stretch (a digit half
    out of the picture, whose strokes leave it far apart; a paper edge; a hand; a sheet's
    grid), reaching from edge to opposite edge, or touching three sides. A digit that grazes an
    edge, or whose stroke tip is clipped, is still readable."""
    top, bottom, left, right = _border_spans(labels, blob)
    stroke = max(stroke, 2.0)
    along = ((top, blob.w), (bottom, blob.w), (left, blob.h), (right, blob.h))
    return (
        # a slanted stroke meets the edge over a few stroke widths, a grazing curve over more
        any(span > max(6 * stroke, 0.6 * extent) for span, extent in along)
        or bool(top and bottom and top + bottom > 4 * stroke)
        or bool(left and right and left + right > 4 * stroke)
        or sum(span > 0 for span in (top, bottom, left, right)) > 2
        # filling a corner of the frame: a shadow, a paper corner
        or (max(top, bottom) > 0.5 * blob.w and max(left, right) > 0.5 * blob.h)
    )


REASONS = {
    "ink": "no ink found: the frame looks like blank paper or an empty scene",
    "speck": "only specks: marks too small to be a digit",
    "line": "only lines (ruled paper, grid or edges), no digit",
    "border": "all candidates touch the border: move the digit into the middle of the frame",
    "small": "only small marks next to nothing digit-sized",
    "solid": "only solid shapes (a finger, a shadow), no handwriting",
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
    scale = working_scale(h, w)
    work = gray if scale == 1.0 else cv2.resize(
        gray, None, fx=scale, fy=scale,
        interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC,
    )
    wh, ww = work.shape
    ink, noise = ink_map(work)
    ink, had_lines = remove_ruled_lines(ink)
    mask = threshold_ink(ink, noise)
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
    groups = merge_overlapping(group_nearby(labels, blobs, round(0.25 * stroke)))
    rejected: dict[str, int] = {}
    digits = []
    for g in groups:
        why = _reject_reason(g, labels, stroke)
        if why:
            rejected[why] = rejected.get(why, 0) + 1
        else:
            digits.append(g)
    if not digits:
        return nothing(max(rejected, key=rejected.__getitem__))
    tallest = max(g.h for g in digits)
    min_height = max(10.0, 0.08 * min(wh, ww), 0.4 * tallest)
    digits = [g for g in digits if g.h >= min_height]
    if not digits:
        return nothing("small" if tallest >= speck_side else "speck")
    def candidate(g: _Blob) -> Candidate:
        box = (
            ox + int(g.x / scale),
            oy + int(g.y / scale),
            max(1, round(g.w / scale)),
            max(1, round(g.h / scale)),
        )
        return Candidate(box=box, input=render_mnist(_ink_piece(ink, labels, g)))

    joins = {
        i: candidate(a.merged(b))
        for i, (a, b) in enumerate(itertools.pairwise(digits))
        if _may_be_one_digit(a, b, stroke)
    }
    return Extraction([candidate(g) for g in digits], gray, full_mask, None, joins)


def _may_be_one_digit(a: _Blob, b: _Blob, stroke: float) -> bool:
    """Neighbours less than a stroke width apart, together no wider than a digit."""
    gap_x = b.x - a.x2
    gap_y = max(a.y, b.y) - min(a.y2, b.y2)
    merged = a.merged(b)
    return gap_x <= stroke and gap_y <= stroke and merged.w <= 1.2 * merged.h


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
