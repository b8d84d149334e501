"""Frame → digits: preprocessing plus one batched pass through the model, with timings."""

from __future__ import annotations

import time
from dataclasses import dataclass, replace

import numpy as np

from device.picture import Decoded
from device.preprocess import Extraction, check_contract, extract_digits, least_picture_side
from device.runtime import INPUT_SHAPE, DigitModel

JOIN_MIN_CONFIDENCE = 0.9
# Below this confidence a reading is flagged uncertain when the sidecar names no threshold of
# its own (models exported before calibration); calibrated models record theirs ("confidence").
DEFAULT_UNCERTAIN_BELOW = 0.9


@dataclass
class DigitReading:
    digit: int
    confidence: float
    probabilities: list[float]
    box: tuple[int, int, int, int]
    uncertain: bool = False  # the model's confidence is below the sidecar's threshold


@dataclass
class Reading:
    digits: list[DigitReading]  # left to right
    number: str | None  # e.g. "42"; None when no digit
    digit: int | None  # reading of the largest candidate; None when none
    confidence: float | None
    probabilities: list[float] | None  # the ten probabilities for `digit`
    reason: str | None  # why no digit was found
    timings_ms: dict[str, float]  # "preprocess", "inference"
    extraction: Extraction
    # True when any digit of the reading is uncertain; None when no digit was found.
    uncertain: bool | None = None


@dataclass
class _Extracted:
    """A frame's candidates and their model inputs, waiting for the model."""

    extraction: Extraction
    inputs: np.ndarray  # model_inputs(extraction)
    started: float  # perf_counter() before and after the preprocessing
    preprocessed: float


class DigitReader:
    """Reads every digit in a frame with one model call; safe to share between threads."""

    def __init__(self, model: DigitModel, roi: tuple[float, float, float, float] | None = None):
        check_contract(model.sidecar.preprocessing)
        self.model = model
        self.roi = roi
        # The longer side a picture needs to read as at full size: device.picture decodes a
        # large JPEG no larger.
        self.picture_side = least_picture_side(roi)
        self._labels = [int(label) for label in model.sidecar.labels]
        self.uncertain_below = model.sidecar.uncertain_below or DEFAULT_UNCERTAIN_BELOW

    def _reading(self, probs: np.ndarray, box: tuple[int, int, int, int]) -> DigitReading:
        best = int(np.argmax(probs))
        return DigitReading(
            digit=self._labels[best],
            confidence=float(probs[best]),
            probabilities=probs.tolist(),
            box=box,
            uncertain=bool(probs[best] < self.uncertain_below),
        )

    def read_picture(self, picture: Decoded) -> Reading:
        """Read a decoded picture, its boxes in the pixels of the picture as the file holds it."""
        reading = self.read(picture.frame)
        if picture.shrink == 1:
            return reading
        return replace(reading, digits=[
            replace(d, box=_enlarged(d.box, picture.shrink, picture.size)) for d in reading.digits
        ])

    def read(self, frame: np.ndarray) -> Reading:
        """Read a (H,W) gray or (H,W,3) BGR uint8 frame. Raises ValueError for a bad frame."""
        extracted = self._extract(frame)
        if not len(extracted.inputs):  # nothing to ask the model
            return self._finish(extracted, extracted.inputs)
        return self._finish(extracted, self.model.predict(extracted.inputs))

    def _extract(self, frame: np.ndarray) -> _Extracted:
        started = time.perf_counter()
        extraction = extract_digits(frame, self.model.sidecar.preprocessing, self.roi)
        return _Extracted(extraction, model_inputs(extraction), started, time.perf_counter())

    def _finish(self, extracted: _Extracted, probs: np.ndarray) -> Reading:
        """The reading from the model's probabilities for `extracted.inputs`."""
        extraction = extracted.extraction
        digits: list[DigitReading] = []
        if extraction.candidates:
            joins = sorted(extraction.joins.items())
            unlined = sorted(extraction.unlined.items())
            readings = [
                self._reading(p, c.box)
                for p, c in zip(
                    probs,
                    extraction.candidates + [c for _, c in joins] + [c for _, c in unlined],
                    strict=True,
                )
            ]
            n = len(extraction.candidates)
            m = n + len(joins)
            pieces = readings[:n]
            for (i, _), reading in zip(unlined, readings[m:], strict=True):
                pieces[i] = _surer_without_line(pieces[i], reading)
            digits = _resolve_joins(
                pieces, {i: r for (i, _), r in zip(joins, readings[n:m], strict=True)}
            )
        inferred = time.perf_counter()
        timings = {
            "preprocess": (extracted.preprocessed - extracted.started) * 1000.0,
            "inference": (inferred - extracted.preprocessed) * 1000.0,
        }
        if not digits:
            return Reading([], None, None, None, None, extraction.reason, timings, extraction)
        main = max(digits, key=lambda d: d.box[2] * d.box[3])
        return Reading(
            digits=digits,
            number="".join(str(d.digit) for d in digits),
            digit=main.digit,
            confidence=main.confidence,
            probabilities=main.probabilities,
            reason=None,
            timings_ms=timings,
            extraction=extraction,
            uncertain=any(d.uncertain for d in digits),
        )


def model_inputs(extraction: Extraction) -> np.ndarray:
    """One batch for the model: every candidate, every join of two neighbours, then every
    candidate without the line along its bottom (N,28,28,1); empty (0 rows) when the
    extraction found no candidate."""
    inputs = [c.input for c in extraction.candidates]
    inputs += [c.input for _, c in sorted(extraction.joins.items())]
    inputs += [c.input for _, c in sorted(extraction.unlined.items())]
    if not inputs:
        return np.zeros((0, *INPUT_SHAPE), dtype=np.float32)
    if len(inputs) == 1:  # most pictures: np.stack costs ~6 calls into numpy for one
        return inputs[0][np.newaxis]
    return np.stack(inputs)


def _surer_without_line(whole: DigitReading, unlined: DigitReading) -> DigitReading:
    """A digit read without the line along its bottom where the model is surer of that (an
    underline joined to a 9 reads as an unsure 2), and that reading is sure on its own: a 2
    without its flat foot reads no surer than with it."""
    if unlined.confidence >= JOIN_MIN_CONFIDENCE and unlined.confidence > whole.confidence:
        return unlined
    return whole


def _resolve_joins(
    pieces: list[DigitReading], joins: dict[int, DigitReading]
) -> list[DigitReading]:
    """Keep a join of pieces i and i+1 where the model is surer of it as one digit than of the
    two pieces as two digits (a 4 with a gap reads as a sure 4 but as an unsure "41")."""
    # Two digits side by side are far more common than one broken digit: a join must also be
    # a sure reading on its own.
    gains = {
        i: joined.confidence - pieces[i].confidence * pieces[i + 1].confidence
        for i, joined in joins.items()
        if joined.confidence >= JOIN_MIN_CONFIDENCE
    }
    taken: dict[int, DigitReading] = {}
    used: set[int] = set()
    for i in sorted((i for i, gain in gains.items() if gain > 0), key=gains.__getitem__)[::-1]:
        if i not in used and i + 1 not in used:
            taken[i] = joins[i]
            used |= {i, i + 1}
    result = []
    for i, piece in enumerate(pieces):
        if i in taken:
            result.append(taken[i])
        elif i not in used:
            result.append(piece)
    return result


def _enlarged(box: tuple[int, int, int, int], times: int,
              size: tuple[int, int]) -> tuple[int, int, int, int]:
    """A box in a picture shrunk ``times``, in the pixels of the picture of ``size`` (h, w)."""
    x, y, w, h = (v * times for v in box)
    height, width = size
    return x, y, max(1, min(w, width - x)), max(1, min(h, height - y))
