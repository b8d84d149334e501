"""What the preview page shows beside the picture: the reading of the latest frame, the 28×28
inputs the model saw, and a short history of readings.

Each preview frame is read at most once however many pages poll, through the same shared
reading /predict uses (`ServiceContext.camera_readings`), on the service's CPU pool.
"""

from __future__ import annotations

import asyncio
import base64
import time
from collections import deque
from dataclasses import asdict, dataclass
from typing import Any

import cv2
import numpy as np

from device.answer import reading_answer
from device.service.frames import PreviewFrame

HISTORY_LENGTH = 12


@dataclass
class HistoryEntry:
    number: str | None  # None: no digit in view
    confidence: float | None  # the best confidence while this reading lasted
    first_seen: float  # Unix time
    last_seen: float
    frames: int  # consecutive preview frames with this reading


def input_png(candidate_input: np.ndarray) -> str:
    """A model input (28, 28, 1) float in [0, 1] as a PNG data URL (the page upscales it)."""
    pixels = (np.clip(candidate_input[..., 0], 0.0, 1.0) * 255).round().astype(np.uint8)
    ok, data = cv2.imencode(".png", pixels)
    if not ok:
        raise ValueError("PNG encoding failed")
    return "data:image/png;base64," + base64.b64encode(data.tobytes()).decode("ascii")


def reading_summary(reading: Any, model: Any) -> dict[str, Any]:
    """The page's view of a device.reader.Reading: its answer (device.answer, as /predict
    gives it) and the 28×28 inputs the model saw."""
    summary = reading_answer(reading, source="camera", model=model)
    summary["inputs"] = [input_png(c.input) for c in reading.extraction.candidates]
    return summary


class PreviewReadings:
    def __init__(self, camera_readings: Any, model: Any) -> None:
        self._camera_readings = camera_readings  # device.service.readings.SharedFrameReadings
        self._model = model  # device.runtime.DigitModel: its name and sha256 join each answer
        self._seq = 0
        self._summary: asyncio.Future | None = None
        self.history: deque[HistoryEntry] = deque(maxlen=HISTORY_LENGTH)

    async def summary(self, frame: PreviewFrame) -> dict[str, Any] | None:
        """The reading of `frame` (computed once per frame); None when it has no camera frame."""
        if frame.frame is None:
            return None
        if frame.seq != self._seq or self._summary is None:
            self._seq = frame.seq
            self._summary = asyncio.ensure_future(self._read(frame.frame))
        # shield: a page that stops polling must not cancel the reading others wait for.
        return await asyncio.shield(self._summary)

    async def _read(self, frame: np.ndarray) -> dict[str, Any]:
        try:
            reading = await self._camera_readings.read(frame)
        except ValueError as exc:  # a frame the reader cannot use
            return {"digit": None, "confidence": None, "number": None, "reason": str(exc),
                    "digits": [], "inputs": [], "timings_ms": {}}
        summary = reading_summary(reading, self._model)
        self._remember(summary["number"], summary["confidence"])
        return summary

    def _remember(self, number: str | None, confidence: float | None) -> None:
        now = time.time()
        last = self.history[-1] if self.history else None
        if last is not None and last.number == number:
            last.last_seen = now
            last.frames += 1
            if confidence is not None:
                last.confidence = max(last.confidence or 0.0, confidence)
            return
        self.history.append(HistoryEntry(number, confidence, now, now, 1))

    def history_json(self) -> list[dict[str, Any]]:
        """Newest first."""
        return [asdict(entry) for entry in reversed(self.history)]
