"""Frame → digits: preprocessing plus one batched pass through the model, with timings."""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from device.preprocess import Extraction, check_contract, extract_digits
from device.runtime import DigitModel


@dataclass
class DigitReading:
    digit: int
    confidence: float
    probabilities: list[float]
    box: tuple[int, int, int, int]


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


class DigitReader:
    """Reads every digit in a frame with one model call; safe to share between threads."""

    def __init__(self, model: DigitModel, roi: tuple[float, float, float, float] | None = None):
        check_contract(model.sidecar.preprocessing)
        self.model = model
        self.roi = roi
        self._labels = [int(label) for label in model.sidecar.labels]

    def read(self, frame: np.ndarray) -> Reading:
        """Read a (H,W) gray or (H,W,3) BGR uint8 frame. Raises ValueError for a bad frame."""
        start = time.perf_counter()
        extraction = extract_digits(frame, self.model.sidecar.preprocessing, self.roi)
        preprocessed = time.perf_counter()
        digits: list[DigitReading] = []
        if extraction.candidates:
            batch = np.stack([c.input for c in extraction.candidates])
            probabilities = self.model.predict(batch)
            for candidate, probs in zip(extraction.candidates, probabilities, strict=True):
                best = int(np.argmax(probs))
                digits.append(
                    DigitReading(
                        digit=self._labels[best],
                        confidence=float(probs[best]),
                        probabilities=[float(p) for p in probs],
                        box=candidate.box,
                    )
                )
        inferred = time.perf_counter()
        timings = {
            "preprocess": (preprocessed - start) * 1000.0,
            "inference": (inferred - preprocessed) * 1000.0,
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
        )
