"""The picture as the other stages want it: gray, cropped to the ROI, without a frame around
it, at a working scale."""

from __future__ import annotations

import math

import cv2
import numpy as np

# Frames are searched at most this large; boxes map back to full size. The smallest digit a
# frame is searched for is 8% of its shorter side (candidates.MIN_DIGIT), ~20 px tall here:
# all that the model's 20 px box needs. A larger search only costs time (4× the pixels at 640).
MAX_WORK_SIDE = 320
# A picture may be decoded smaller before it is read (a phone's large JPEG, device.picture) while
# its longer side, or its ROI's, stays this many times the working side: the search's own shrink
# then still averages over several of the file's pixels, and readings stay as from the file.
DECODE_MARGIN = 2
# ...and at least this large: an MNIST file (28×28) or a USPS digit (16×16) is enlarged so that
# its strokes are several pixels wide, as they are in any photo, and every stage sees one scale.
MIN_WORK_SIDE = 160
# The smallest digit searched for is this many px tall at the working scale
# (candidates.find_digits), and a picture, like a region of interest (crop_roi), is at least
# MIN_PICTURE_SIDE px on each side: one smaller or thinner than that holds no digit, and the
# stages' windows and bands have no room in it (check_size).
SMALLEST_DIGIT = 10
MIN_PICTURE_SIDE = 8
# A band along an edge is a frame (without_frame) at most this share of the picture deep...
FRAME_BAND = 0.1
# ...of one shade: its pixels within this of it, all but this share of each line (dust on a
# scanner's lid, a JPEG's stray pixel)...
SAME_SHADE = 2
STRAY_PIXELS = 0.01
# ...and a ground inside it at least this far from its shade (polarity.DISTINCT_SHADES: strokes
# stand out from their ground by as much).
FRAME_CONTRAST = 48
# Frames inside frames taken off at most (a white margin, a black frame, the canvas).
MAX_FRAMES = 3


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


def least_picture_side(roi: tuple[float, float, float, float] | None) -> int:
    """The longer side a picture must keep for the search to see all it would see at full size:
    DECODE_MARGIN times the working side, over the ROI's share of the frame."""
    share = 1.0 if roi is None else min(roi[2], roi[3])
    return math.ceil(DECODE_MARGIN * MAX_WORK_SIDE / share)


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
    if min(x1 - x0, y1 - y0) < MIN_PICTURE_SIDE:
        raise ValueError(f"roi {roi} leaves less than {MIN_PICTURE_SIDE}×{MIN_PICTURE_SIDE} "
                         f"pixels of a {w}×{h} frame")
    return gray[y0:y1, x0:x1], (x0, y0)


def without_frame(gray: np.ndarray) -> tuple[np.ndarray, tuple[int, int]]:
    """The picture without the bands of one shade along its edges that stand apart from a
    ground inside them (frame_band): a frame drawn around a screenshot or a canvas, a scanner
    lid's dark edge. Read with them, a band along the edge passed for the ground and the paper
    inside for ink. Returns what is left and its offset; a photo's edge (sensor noise) is never
    one shade, and a camera frame comes back at the first line. Bands inside bands (a white
    margin around a black frame) go one after the other."""
    top = left = 0
    for _ in range(MAX_FRAMES):
        h, w = gray.shape
        bands = [frame_band(view) for view in (gray, gray[::-1], gray.T, gray.T[::-1])]
        if not any(bands):
            break
        t, b, lf, r = bands
        inside = gray[t : h - b, lf : w - r]
        if size_problem(*inside.shape) is not None:  # no room for a digit: no frame either
            break
        gray = inside
        top, left = top + t, left + lf
    return gray, (left, top)


def frame_band(view: np.ndarray) -> int:
    """How many of a picture's top lines (``view``, turned so that the side is on top) are a
    band of one shade at most FRAME_BAND of the picture deep, ending at a line of another
    shade (by FRAME_CONTRAST) all across: the ground inside a frame. 0 where there is none: a
    stroke that reaches the band, or the ground itself running deeper, is no frame. The inner
    line is judged between the other sides' bands, which cross it at its ends."""
    shade, strays = _shade_of(view[0])
    if strays > STRAY_PIXELS * view.shape[1]:  # a photo's edge, a stroke along it: at once
        return 0
    deepest = max(1, int(FRAME_BAND * view.shape[0]))
    lines = view[1 : deepest + 1]
    low, high = max(0, shade - SAME_SHADE), min(255, shade + SAME_SHADE)
    near = np.count_nonzero((lines >= low) & (lines <= high), axis=1)
    same = near >= (1 - STRAY_PIXELS) * view.shape[1]
    depth = 1 + (int(np.argmin(same)) if not same.all() else len(same))
    if depth > deepest or depth >= view.shape[0]:
        return 0
    inner = view[depth]
    ends = max(1, int(FRAME_BAND * len(inner)))
    inner = inner[_run_of(inner[:ends], shade) : len(inner) - _run_of(inner[::-1][:ends], shade)]
    if inner.size == 0:
        return 0
    ground, strays = _shade_of(inner)
    contrast = abs(ground - shade) >= FRAME_CONTRAST
    return depth if contrast and strays <= STRAY_PIXELS * inner.size else 0


def _shade_of(line: np.ndarray) -> tuple[int, int]:
    """A line's commonest shade and how many of its pixels are off it by over SAME_SHADE."""
    counts = np.bincount(line, minlength=256)
    shade = int(np.argmax(counts))
    near = int(counts[max(0, shade - SAME_SHADE) : shade + SAME_SHADE + 1].sum())
    return shade, line.size - near


def _run_of(line: np.ndarray, shade: int) -> int:
    """How many of a line's first pixels are ``shade`` (±SAME_SHADE)."""
    off = np.abs(line.astype(np.int16) - shade) > SAME_SHADE
    return int(np.argmax(off)) if off.any() else line.size


def size_problem(h: int, w: int) -> str | None:
    """Why an h×w picture cannot hold a digit, or None: under MIN_PICTURE_SIDE px on a side,
    or so elongated that at its working scale its shorter side is under the smallest digit
    searched for (a strip of 1×10,000 px, a line)."""
    if min(h, w) < MIN_PICTURE_SIDE:
        return (f"the picture is {w}×{h} px: too small to hold a digit; send one of at least "
                f"{MIN_PICTURE_SIDE}×{MIN_PICTURE_SIDE} px")
    scale = working_scale(h, w)
    if min(h, w) * scale < SMALLEST_DIGIT:
        return (f"the picture is {w}×{h} px: too narrow to hold a digit (searched at "
                f"{round(w * scale)}×{round(h * scale)} px, under the {SMALLEST_DIGIT} px the "
                "smallest digit needs); crop it around the digit")
    return None


def check_size(gray: np.ndarray) -> None:
    """Refuse, with ValueError, a picture that cannot hold a digit (size_problem)."""
    if (problem := size_problem(*gray.shape)) is not None:
        raise ValueError(problem)


def working_scale(h: int, w: int) -> float:
    """How much a picture is scaled before it is searched (1.0 when it is already in range)."""
    longer = max(h, w)
    if longer > MAX_WORK_SIDE:
        return MAX_WORK_SIDE / longer
    if longer < MIN_WORK_SIDE:
        return MIN_WORK_SIDE / longer
    return 1.0


def at_working_scale(gray: np.ndarray) -> tuple[np.ndarray, float]:
    """The picture at its working scale (shrunk by area, enlarged by cubic interpolation), and
    that scale."""
    scale = working_scale(*gray.shape)
    if scale == 1.0:
        return gray, scale
    interpolation = cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC
    return cv2.resize(gray, None, fx=scale, fy=scale, interpolation=interpolation), scale
