"""The picture as the other stages want it: gray, cropped to the ROI, at a working scale."""

from __future__ import annotations

import cv2
import numpy as np

# Frames are searched at most this large; boxes map back to full size. The smallest digit a
# frame is searched for is 8% of its shorter side, ~20 px tall here: all that the model's 20 px
# box needs. A larger search only costs time (4× the pixels at 640).
MAX_WORK_SIDE = 320
# ...and at least this large: an MNIST file (28×28) or a USPS digit (16×16) is enlarged so that
# its strokes are several pixels wide, as they are in any photo, and every stage sees one scale.
MIN_WORK_SIDE = 160


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


def at_working_scale(gray: np.ndarray) -> tuple[np.ndarray, float]:
    """The picture at its working scale (shrunk by area, enlarged by cubic interpolation), and
    that scale."""
    scale = working_scale(*gray.shape)
    if scale == 1.0:
        return gray, scale
    interpolation = cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC
    return cv2.resize(gray, None, fx=scale, fy=scale, interpolation=interpolation), scale
