"""From a picture to MNIST-style 28×28 inputs, one per digit, left to right.

MNIST digits are white strokes on black, the longer side fitted to 20 px with anti-aliasing,
padded to 28×28 and shifted so the centre of mass is in the middle. The pictures a device sees
are nothing like that: a camera frame of a sheet (uneven light, paper texture, lines, specks,
several digits), a phone photo, a tight crop, a drawing, the MNIST file itself; dark ink on
light or light on dark. The pipeline, one stage per module:

    frame        gray, the region of interest, a working scale (a picture that already is an
                 MNIST-style input, an MNIST file, goes to the model as it is), without a
                 frame drawn around it or a scanner lid's dark edge
    polarity     which way the ink goes (and a clean picture's ground level)
    sheet        the sheet that stands out from a table or a hand, if one does
    ground       the paper's brightness under the strokes → an ink map (of the sheet)
    ink          ruled lines subtracted, a hysteresis threshold → an ink mask
    candidates   components joined into digits; specks, lines, shapes and cut digits refused
    mnist_style  each digit's ink as MNIST drew its digits → model inputs

Every threshold is relative to the picture or to the stroke width, so no number here is tuned
to one data set.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from functools import cached_property

import cv2
import numpy as np

from device.preprocess.candidates import REASONS, Blob, edge_of, find_digits, may_be_one_digit
from device.preprocess.contract import check_contract
from device.preprocess.frame import (
    at_working_scale,
    check_size,
    crop_roi,
    least_picture_side,
    to_gray,
    without_frame,
)
from device.preprocess.ground import ink_map
from device.preprocess.ink import remove_ruled_lines, threshold_ink
from device.preprocess.measure import stroke_width
from device.preprocess.mnist_style import (
    as_model_input,
    bottom_line,
    ink_piece,
    reaches_past,
    render_mnist,
    without_bottom_line,
)

__all__ = [
    "REASONS", "Candidate", "Extraction", "check_contract", "extract_digits",
    "least_picture_side", "stroke_width", "to_gray",
]


@dataclass
class Candidate:
    box: tuple[int, int, int, int]  # x, y, w, h in full-frame pixel coordinates
    input: np.ndarray  # (28, 28, 1) float32 in [0, 1], ready for DigitModel


@dataclass
class Extraction:
    candidates: list[Candidate]  # left to right
    gray: np.ndarray  # the grayscale (ROI-cropped) image that was searched
    searched_mask: np.ndarray  # the binary threshold mask (uint8 0/255) at the working scale
    reason: str | None  # why nothing was found (None when candidates exist)
    # joins[i]: candidates i and i+1 taken as one digit. Offered when two pieces sit so close
    # that they may be one digit written with a gap (a 4 whose stem does not meet its bar);
    # the reader keeps whichever reading the model is more confident of.
    joins: dict[int, Candidate] = field(default_factory=dict)
    # unlined[i]: candidate i without the straight line along its bottom, where that line may
    # be an underline that blur joined to it or a 2's flat foot; the reader keeps the surer
    # reading. (A line that reaches well past the digit on both sides is left out outright.)
    unlined: dict[int, Candidate] = field(default_factory=dict)

    @cached_property
    def mask(self) -> np.ndarray:
        """The threshold mask at the size of ``gray``, made when asked for (the command line's
        debug pictures): a reading needs none, and enlarging it costs a frame more than the
        threshold itself (~0.1 ms at 640×480, several times that for a photo)."""
        h, w = self.gray.shape
        if self.searched_mask.shape == (h, w):
            return self.searched_mask
        return cv2.resize(self.searched_mask, (w, h), interpolation=cv2.INTER_NEAREST)


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
    check_size(gray)
    if (as_it_is := as_model_input(gray)) is not None:
        return _as_it_is(*as_it_is, gray, (ox, oy))
    gray, (fx, fy) = without_frame(gray)
    ox, oy = ox + fx, oy + fy
    work, scale = at_working_scale(gray)
    ink, noise, sheet = ink_map(work)
    ink, had_lines = remove_ruled_lines(ink, page=noise is None)
    inked = threshold_ink(ink, noise)
    found = find_digits(inked, had_lines, photo=noise is not None,
                        sheet_edge=edge_of(sheet, ink.shape), gray=work)
    if found.reason:
        return Extraction([], gray, inked.mask, REASONS[found.reason])

    def candidate(g: Blob, piece: np.ndarray | None = None) -> Candidate:
        box = (ox + int(g.x / scale), oy + int(g.y / scale),
               max(1, round(g.w / scale)), max(1, round(g.h / scale)))
        piece = ink_piece(ink, found.labels, g) if piece is None else piece
        return Candidate(box=box, input=render_mnist(piece))

    joins = {
        i: candidate(a.merged(b))
        for i, (a, b) in enumerate(itertools.pairwise(found.digits))
        if may_be_one_digit(a, b, found.stroke)
    }
    pieces = [ink_piece(ink, found.labels, g) for g in found.digits]
    candidates = [candidate(g, p) for g, p in zip(found.digits, pieces, strict=True)]
    unlined = {}
    for i, (g, piece) in enumerate(zip(found.digits, pieces, strict=True)):
        if (top := bottom_line(piece, found.stroke)) is not None:
            digit = without_bottom_line(piece, top)
            # The piece starts 2 px above and left of the blob (ink_piece's margin) unless the
            # frame cuts it.
            x, y, w, h = cv2.boundingRect(digit)
            above = Blob(max(0, g.x - 2) + x, max(0, g.y - 2) + y, w, h, g.labels)
            # A line reaching a stroke past the digit on both sides is an underline; one that
            # only just does may be a 2's foot, and the reader keeps the surer reading.
            if reaches_past(piece, top, by=found.stroke):
                candidates[i] = candidate(above, digit)
            elif reaches_past(piece, top, by=0.0):
                unlined[i] = candidate(above, digit)
    return Extraction(candidates, gray, inked.mask, None, joins, unlined)


def _as_it_is(
    ready: np.ndarray, box: tuple[int, int, int, int], gray: np.ndarray, offset: tuple[int, int]
) -> Extraction:
    """The extraction of a picture that already is a model input: one candidate, itself."""
    mask = cv2.compare(ready[..., 0], 0, cv2.CMP_GT)
    x, y, w, h = box
    return Extraction([Candidate(box=(offset[0] + x, offset[1] + y, w, h), input=ready)], gray,
                      mask, None)
