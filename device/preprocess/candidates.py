"""From the ink mask to digit candidates: components joined into digits, and what is not one
(specks, lines, solid shapes, a digit cut off by the frame) refused with a reason."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from device.preprocess.frame import SMALLEST_DIGIT
from device.preprocess.ink import InkMask
from device.preprocess.measure import convex_hull, fills_its_hull, median, stroke_width

# The sheet's edge, where ink found is cut off by it, is this many px wide in the searched
# image (cut_by_sheet): the sheet found is a pixel of its small copy inside the paper's own
# edge, and a stroke's blurred end may stop a pixel or two short of where the search stops.
SHEET_EDGE = 2
# What a candidate's hull holds (hollow) is looked at no larger than about this many px
# across, however large the candidate...
HOLLOW_SIDE = 48
# ...this many px clear of the strokes and of the hull's edge (a camera's blur)...
HOLLOW_CLEAR = 2
# ...in each part (a loop, a bay) of at least this many px.
HOLLOW_CORE = 9
# A part holds the strokes' own shade where it is this close to them, as a share of the
# strokes' contrast to the ground around: a solid shape's inside is its rim's shade up to noise
# (within 0.03 on generated scenes of dark discs and boxes on paper), where the paper a digit
# holds, even in a shadow whose edge runs by it, stays lighter (0.18 and up on validation
# shadowed photos).
HOLLOW_SAME = 0.1
# ...and the shape is solid where no more than this share of the ground around it has that
# shade: a solid shape lies on paper all round (0 for nearly all those discs and boxes), where
# a shadow's ink, as dark as the shadow, runs on past the digit (0.24 and up on validation
# shadowed photos).
HOLLOW_SHADE_AROUND = 0.1
# A solid shape less than this many times the smallest digit tall is named a small mark: a
# digit that small may look solid at the working scale (its strokes run together), and the
# fix, to move closer, is the same.
SOLID_OR_SMALL = 2.0
# A digit is at least this share of the searched picture's shorter side (REASONS["small"] says
# so to the user): smaller marks beside no digit are print, specks or texture, and at the
# working scale a smaller digit's strokes run together.
MIN_DIGIT = 0.08


@dataclass
class Blob:
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

    def owns(self, labels: np.ndarray) -> np.ndarray:
        """Which of ``labels`` (component labels, any shape) are this blob's own pixels."""
        if len(self.labels) == 1:  # most digits are one component: a comparison is far cheaper
            return labels == self.labels[0]
        return np.isin(labels, self.labels)

    def gaps(self, other: Blob) -> tuple[int, int]:
        """Empty pixels between the two boxes across and down (negative where they overlap)."""
        return (max(self.x, other.x) - min(self.x2, other.x2),
                max(self.y, other.y) - min(self.y2, other.y2))

    def near(self, other: Blob, reach: float) -> bool:
        """Within ``reach`` px of each other both ways."""
        gap_x, gap_y = self.gaps(other)
        return gap_x <= reach and gap_y <= reach

    def merged(self, other: Blob) -> Blob:
        x, y = min(self.x, other.x), min(self.y, other.y)
        x2, y2 = max(self.x2, other.x2), max(self.y2, other.y2)
        return Blob(x, y, x2 - x, y2 - y, self.labels + other.labels)


def _overlap_x(a: Blob, b: Blob) -> float:
    """Horizontal overlap as a fraction of the narrower blob's width."""
    gap_x, _ = a.gaps(b)
    return -gap_x / max(1, min(a.w, b.w))


def group_nearby(labels: np.ndarray, blobs: list[Blob], reach: int) -> list[Blob]:
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
    by_group: dict[int, Blob] = {}
    for b in blobs:
        ys, xs = np.nonzero(labels[b.y : b.y2, b.x : b.x2] == b.labels[0])
        group = int(joined[b.y + ys[0], b.x + xs[0]])
        by_group[group] = by_group[group].merged(b) if group in by_group else b
    return list(by_group.values())


def is_line(blob: Blob) -> bool:
    """Far wider than tall: a rule, an underline, a bar; never a digit by itself."""
    return blob.w > 4 * blob.h


def underlines(line: Blob, digit: Blob) -> bool:
    """A line below a digit, clear of it: an underline, not a bar the digit lost (a 5's, a
    7's bar is at its top)."""
    return is_line(line) and line.y >= digit.y2


def drop_boxes(blobs: list[Blob], stroke: float) -> list[Blob]:
    """Without the boxes drawn around digits (a form's fields): ink whose own outline holds a
    separate mark at least a third its height, clear of it by more than a stroke width. No
    digit holds another mark that large: a 6's or a 0's loop is its own stroke."""
    if len(blobs) < 2:
        return blobs
    x, y, x2, y2 = np.array([(b.x, b.y, b.x2, b.y2) for b in blobs]).T
    # holds[i, j]: blob j lies inside blob i, clear of its sides, and is a third its height.
    holds = ((x[None, :] - x[:, None] > stroke) & (x2[:, None] - x2[None, :] > stroke)
             & (y[None, :] - y[:, None] > stroke) & (y2[:, None] - y2[None, :] > stroke)
             & (3 * (y2 - y)[None, :] >= (y2 - y)[:, None]))
    return [b for b, is_box in zip(blobs, holds.any(axis=1), strict=True) if not is_box]


def merge_overlapping(blobs: list[Blob], stroke: float) -> list[Blob]:
    """Join pieces of one digit that share most of their horizontal extent and sit close
    vertically: a fragment (a 5's loose top bar), or any piece less than a stroke width away
    (a stroke the pen left and took up again). Side-by-side digits barely overlap
    horizontally; digits in two rows stand further apart than a stroke's width; a line under
    a digit underlines it."""
    groups = sorted(blobs, key=lambda b: b.x)
    merged = True
    while merged:
        merged = False
        for i in range(len(groups)):
            for j in range(i + 1, len(groups)):
                a, b = groups[i], groups[j]
                if underlines(a, b) or underlines(b, a):
                    continue
                _, gap_y = a.gaps(b)
                short = min(a.h, b.h) < 0.75 * max(a.h, b.h)  # a fragment, not a digit
                close = short or gap_y <= stroke
                if close and _overlap_x(a, b) >= 0.5 and gap_y <= 0.5 * max(a.h, b.h):
                    groups[i] = a.merged(b)
                    del groups[j]
                    merged = True
                    break
            if merged:
                break
    return sorted(groups, key=lambda b: b.x)


def _border_spans(labels: np.ndarray, blob: Blob) -> list[int]:
    """For each frame side (top, bottom, left, right), how far apart the blob's first and last
    pixels on it are (0 when it does not touch that side)."""
    h, w = labels.shape
    spans = []
    for side in (labels[0, :], labels[h - 1, :], labels[:, 0], labels[:, w - 1]):
        on = np.flatnonzero(blob.owns(side))
        spans.append(int(on[-1] - on[0] + 1) if len(on) else 0)
    return spans


def edge_of(sheet: np.ndarray | None, shape: tuple[int, int]) -> np.ndarray | None:
    """The sheet's edge (bool, SHEET_EDGE px wide inside it) at the searched image's size
    ``shape``, from the sheet found on the small copy (ground.ink_map); where the frame cuts
    the sheet is no edge of it. None where no sheet limits the search."""
    if sheet is None:
        return None
    h, w = shape
    inside = cv2.resize(sheet.astype(np.uint8), (w, h), interpolation=cv2.INTER_NEAREST)
    # Erosion counts outside the frame as more sheet, so the frame's edge stays no edge.
    deep = cv2.erode(inside, np.ones((2 * SHEET_EDGE + 1, 2 * SHEET_EDGE + 1), np.uint8))
    return cv2.subtract(inside, deep) > 0


def cut_by_sheet(blob: Blob, labels: np.ndarray, sheet_edge: np.ndarray | None) -> bool:
    """Whether the blob runs into the sheet's edge: ink is written inside a sheet, so what
    reaches its edge goes on beyond it (a pen or a pencil lying across the edge, a finger),
    and the searched ink, which stops there, is a cut-off piece of it."""
    if sheet_edge is None:
        return False
    window = np.s_[blob.y : blob.y2, blob.x : blob.x2]
    return bool((blob.owns(labels[window]) & sheet_edge[window]).any())


def reject_reason(blob: Blob, labels: np.ndarray, stroke: float, photo: bool,
                  sheet_edge: np.ndarray | None = None, *,
                  gray: np.ndarray | None = None) -> str | None:
    """Why a merged blob cannot be a digit, or None if it can. ``photo``: the picture came
    through a camera (its ground has sensor noise), not a clean drawing or crop.
    ``sheet_edge``: edge_of the sheet that limits the search, if one does. ``gray``: the
    searched picture, where there is one to look at."""
    frame_h = labels.shape[0]
    framed = frames_the_digit(blob, labels.shape)
    if is_line(blob) or (blob.h > 6 * blob.w and blob.h > 0.9 * frame_h and not framed):
        return "line"
    # A clean picture (no sensor noise: a crop or a drawing made on a computer) that a digit
    # spans from edge to edge one way was cropped to that digit, centred or not (snug on three
    # sides, loose on the fourth); a camera's frame cuts through whatever lies beyond it.
    cropped_to_it = framed or (not photo and spans_the_picture(blob, labels.shape))
    # Even then, what lies along three of its sides frames the picture (a table seen all round
    # a sheet, a box drawn round it): never a digit the picture was cropped to.
    spans, tip = _border_spans(labels, blob), max(stroke, 2.0)
    along = _lies_along(blob, spans, tip)
    if (not cropped_to_it or sum(along) >= 3) and _cut_by_border(blob, spans, along, tip):
        return "border"
    if cut_by_sheet(blob, labels, sheet_edge):
        return "sheet"
    # Handwriting is strokes: even a bold marker digit is far thinner than it is tall. A solid
    # shape (a fingertip over the sheet, a shadow, a sticker) is not, and it is convex too:
    # it fills its outline's hull, where a bold digit's strokes leave bays (an 8's waist).
    # Only a camera sees fingers and shadows: in a clean picture (a drawing, a digital crop)
    # every mark was drawn, and a bold marker 0 whose loop filled in is still that 0.
    if photo:
        own = blob.owns(labels[blob.y : blob.y2, blob.x : blob.x2]).astype(np.uint8)
        # Where the frame cuts a shape, the cut is none of its outline (beyond_the_frame),
        # unless the picture is this digit, cropped to it.
        whole = own if cropped_to_it else beyond_the_frame(own, blob, labels.shape)
        if stroke_width(whole) > 0.3 * max(blob.w, blob.h) and fills_its_hull(own):
            return "solid"
        if gray is not None and hollow(blob, labels, gray, stroke):
            return "solid"
    return None


def hollow(blob: Blob, labels: np.ndarray, gray: np.ndarray, stroke: float) -> bool:
    """Whether what a blob's hull holds clear of its strokes is the shade of the strokes,
    with the ground all round it of another: the rim of a solid shape wider than the paper
    estimate's closing (a coin, a phone on the desk), whose inside was taken for paper and its
    rim, often broken, for ink: a 0. What a digit's hull holds, in its loops and bays, is
    paper, the shade around the digit, in one part at least where a bold marker's loop filled
    in. A hull too narrow to show its inside clear of the blurred strokes (a 1's) is not
    asked."""
    # Whether a shape is hollow shows as well on every step-th pixel, in a fraction of the
    # time. The ground is looked at as far out as a stroke, and past the blur.
    step = max(1, round(max(blob.w, blob.h) / HOLLOW_SIDE))
    reach = max(round(stroke), (2 * HOLLOW_CLEAR + 1) * step)
    h, w = labels.shape
    x0, y0 = max(0, blob.x - reach), max(0, blob.y - reach)
    x1, y1 = min(w, blob.x2 + reach), min(h, blob.y2 + reach)
    own = blob.owns(labels[y0:y1:step, x0:x1:step])
    box = gray[y0:y1:step, x0:x1:step]
    hull = convex_hull(own)
    clear = np.ones((2 * HOLLOW_CLEAR + 1, 2 * HOLLOW_CLEAR + 1), np.uint8)
    inside = cv2.erode((hull & ~own).view(np.uint8), clear)
    around = cv2.dilate(hull.view(np.uint8), clear) == 0
    if not around.any():
        return False
    rim, ground = median(box[own]), median(box[around])
    # Each part the hull holds (a loop, a bay) holds the strokes' shade: a bold 6 whose loop
    # filled in still holds paper in its bay.
    n, parts = cv2.connectedComponents(inside)
    held = [median(box[parts == part]) for part in range(1, n)
            if np.count_nonzero(parts == part) >= HOLLOW_CORE]
    if not held or any(abs(shade - rim) > HOLLOW_SAME * abs(ground - rim) for shade in held):
        return False
    # A shape lies on the ground all round; a shadow that holds faint ink runs on past it.
    shades = box[around].astype(np.int16)
    like_held = np.abs(shades - median(np.array(held))) < np.abs(shades - ground)
    return np.mean(like_held) <= HOLLOW_SHADE_AROUND


def beyond_the_frame(own: np.ndarray, blob: Blob, shape: tuple[int, int]) -> np.ndarray:
    """A blob's pixels (``own``: its box of a picture ``shape``) mirrored across each frame
    edge it touches: the shape goes on beyond the frame, and its cut there is none of its
    outline. A shadow's corner that the frame cuts off is about as thick as it is wide;
    measured inside the frame alone, its long cut made it look as thin as a stroke. A stroke
    that the frame cuts stays as thin, its cut as short as the stroke is wide."""
    h, w = shape
    bh, bw = own.shape
    pads = (bh if blob.y == 0 else 0, bh if blob.y2 == h else 0,
            bw if blob.x == 0 else 0, bw if blob.x2 == w else 0)
    return cv2.copyMakeBorder(own, *pads, cv2.BORDER_REFLECT) if any(pads) else own


def frames_the_digit(blob: Blob, shape: tuple[int, int]) -> bool:
    """The picture is this digit: a crop framed on it, so it spans the picture from edge to
    edge one way and sits in the middle the other way. A digit cut off by the frame of a camera
    scene lies against the edge instead, most of the picture beside it."""
    h, w = shape
    off_centre_x = abs(blob.x + blob.w / 2 - w / 2) / w
    off_centre_y = abs(blob.y + blob.h / 2 - h / 2) / h
    return spans_the_picture(blob, shape) and max(off_centre_x, off_centre_y) <= 0.15


def spans_the_picture(blob: Blob, shape: tuple[int, int]) -> bool:
    """The blob reaches (nearly) from edge to edge of the picture, across or down."""
    h, w = shape
    return blob.h >= 0.9 * h or blob.w >= 0.9 * w


def _lies_along(blob: Blob, spans: list[int], stroke: float) -> list[bool]:
    """For each frame side (_border_spans' order), whether the blob lies along it: over most of
    its own extent that way and far more than a stroke tip's width (a slanted stroke meets the
    edge over a few stroke widths, a grazing curve over more); or as a sliver, over nearly all
    of its extent and reaching less than a stroke's width into the picture, as the edge of
    something beyond the frame does (a shadow's, a table's), and no digit's strokes."""
    extents, depths = (blob.w, blob.w, blob.h, blob.h), (blob.h, blob.h, blob.w, blob.w)
    return [span > max(6 * stroke, 0.6 * extent) or (span >= 0.9 * extent and depth < stroke)
            for span, extent, depth in zip(spans, extents, depths, strict=True)]


def _cut_by_border(blob: Blob, spans: list[int], along: list[bool], stroke: float) -> bool:
    """A blob the frame edge cuts through (``spans``: _border_spans; ``along``: _lies_along;
    ``stroke`` at least 2 px): lying along an edge (a digit half out of the picture, whose
    strokes leave it far apart; a paper edge; a hand; a sheet's grid), reaching from edge to
    opposite edge, or touching three sides. A digit that grazes an edge, or whose stroke tip is
    clipped, is still readable."""
    top, bottom, left, right = spans
    return (
        any(along)
        or bool(top and bottom and top + bottom > 4 * stroke)
        or bool(left and right and left + right > 4 * stroke)
        or sum(span > 0 for span in (top, bottom, left, right)) > 2
        # filling a corner of the frame: a shadow, a paper corner
        or (max(top, bottom) > 0.5 * blob.w and max(left, right) > 0.5 * blob.h)
    )


def may_be_one_digit(a: Blob, b: Blob, stroke: float) -> bool:
    """Neighbours less than a stroke width apart, together no wider than a digit."""
    merged = a.merged(b)
    return a.near(b, stroke) and merged.w <= 1.2 * merged.h


def join_end_to_end(digits: list[Blob], stroke: float) -> list[Blob]:
    """Join two digit-like pieces that lie one above the other, less than a stroke width apart
    both ways: a slanted stroke (a 1 leaning right) the pen left and took up again, whose
    pieces barely overlap across, so merge_overlapping leaves them apart and each reads as a
    sure 1. Digits side by side share a line: one reaches far below the other's top. Only
    pieces that are digit-like on their own are joined, so a digit never takes in a mark
    that the frame's edge cuts."""
    joined = sorted(digits, key=lambda b: b.y)
    i = 0
    while i < len(joined):
        for j in range(i + 1, len(joined)):
            gap_x, gap_y = joined[i].gaps(joined[j])
            if gap_x <= stroke and -stroke <= gap_y <= stroke:
                joined[i] = joined[i].merged(joined.pop(j))
                break
        else:
            i += 1
    return joined


def attach_strokes(digits: list[Blob], small: list[Blob], stroke: float) -> list[Blob]:
    """Each piece too short to be a digit joins a digit it lies within a stroke width of (the
    short first stroke of a 4 written in two, stopping short of the stem); the others are
    marks and are dropped."""
    digits = digits[:]
    for piece in small:
        for i, digit in enumerate(digits):
            if digit.near(piece, stroke):
                digits[i] = digit.merged(piece)
                break
    return digits


REASONS = {
    "ink": "no ink found: the frame looks like blank paper or an empty scene",
    "speck": "only specks: marks too small to be a digit",
    "line": "only lines (ruled paper, grid or edges), no digit",
    "border": "all candidates touch the border: move the digit into the middle of the frame",
    "small": ("only small marks next to nothing digit-sized: a digit must be at least about a "
              "twelfth of the picture's shorter side; move closer, or crop the picture to it"),
    "solid": "only solid shapes (a finger, a shadow), no handwriting",
    "sheet": "only marks running off the sheet (a pen or pencil across its edge), no digit",
}


@dataclass
class Found:
    labels: np.ndarray  # the mask's connected components (cv2 labels)
    digits: list[Blob]  # left to right
    stroke: float  # the mask's mean stroke width (px)
    reason: str | None  # a key of REASONS when no digit was found


def find_digits(inked: InkMask, had_lines: bool, *, photo: bool,
                sheet_edge: np.ndarray | None = None, gray: np.ndarray | None = None) -> Found:
    """The digit-like groups of ink in the thresholded mask (its components as the threshold
    found them), left to right, or why there are none. ``photo``, ``sheet_edge``, ``gray``:
    as for reject_reason."""
    mask, labels = inked.mask, inked.labels
    blobs = [Blob(*(int(v) for v in box), [i]) for i, box in enumerate(inked.boxes, start=1)]
    if not blobs:
        return Found(labels, [], 0.0, "line" if had_lines else "ink")
    h, w = mask.shape
    speck_side = max(3.0, 0.03 * min(h, w))
    blobs = [b for b in blobs if max(b.w, b.h) >= speck_side]
    if not blobs:
        return Found(labels, [], 0.0, "speck")
    stroke = stroke_width(mask)
    blobs = drop_boxes(blobs, stroke)
    groups = merge_overlapping(group_nearby(labels, blobs, round(0.25 * stroke)), stroke)
    rejected: dict[str, int] = {}
    digits = []
    smallest_digit = max(float(SMALLEST_DIGIT), MIN_DIGIT * min(h, w))
    for g in groups:
        why = reject_reason(g, labels, stroke, photo, sheet_edge, gray=gray)
        # A digit not much above the smallest is searched at too coarse a scale to show its
        # strokes apart, and may look solid: the user had better hear that it is small.
        if why == "solid" and g.h < SOLID_OR_SMALL * smallest_digit:
            why = "small"
        if why:
            rejected[why] = rejected.get(why, 0) + 1
        else:
            digits.append(g)
    if not digits:
        return Found(labels, [], stroke, max(rejected, key=rejected.__getitem__))
    digits = join_end_to_end(digits, stroke)
    tallest = max(g.h for g in digits)
    min_height = max(smallest_digit, 0.4 * tallest)
    small = [g for g in digits if g.h < min_height]
    digits = attach_strokes([g for g in digits if g.h >= min_height], small, stroke)
    if not digits:
        return Found(labels, [], stroke, "small" if tallest >= speck_side else "speck")
    return Found(labels, sorted(digits, key=lambda b: b.x), stroke, None)
