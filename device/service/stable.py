"""The stable reading: a number counts only once K consecutive frames read it, none uncertain.

A digit being written, a hand passing or a frame the model is unsure of never becomes a
reading: any uncertain frame starts the count over, and a number shown for fewer than K frames
in a row leaves the current reading as it was. "Nothing in view" is a reading like any other
(number None), so a card taken away is reported too. Pure logic, no I/O: the watch loop feeds
it one frame at a time.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from device.answer import DigitFound, digit_answer
from device.service.schemas import StableReading


@dataclass(frozen=True)
class FrameReading:
    """What one frame said, reduced to what stability needs."""

    number: str | None  # None: no digit in view
    digits: tuple[DigitFound, ...]
    confidence: float | None  # the weakest digit's; None without digits
    certain: bool  # counts towards a stable reading

    @classmethod
    def of(cls, reading: Any, min_confidence: float = 0.0) -> FrameReading:
        """From a device.reader.Reading: uncertain when the reader says so, or when the weakest
        digit is below `min_confidence` (DIGITS_WATCH_MIN_CONFIDENCE)."""
        digits = tuple(DigitFound(**digit_answer(found)) for found in reading.digits)
        weakest = min((d.confidence for d in digits), default=None)
        below_floor = weakest is not None and weakest < min_confidence
        return cls(
            number=reading.number,
            digits=digits,
            confidence=weakest,
            certain=not (reading.uncertain or below_floor),
        )


@dataclass
class _Held:
    frame: FrameReading  # the frame that made it stable
    since: datetime
    last_seen: datetime
    frames_confirmed: int
    seq: int


class StableTracker:
    def __init__(self, frames_needed: int) -> None:
        if frames_needed < 1:
            raise ValueError("frames_needed must be at least 1")
        self.frames_needed = frames_needed
        self._held: _Held | None = None
        self._candidate: str | None = None
        self._streak = 0  # consecutive certain frames reading `_candidate`
        self._changes = 0

    @property
    def current(self) -> StableReading | None:
        """The stable reading now (a snapshot), or None before the first one."""
        held = self._held
        if held is None:
            return None
        return StableReading(
            number=held.frame.number,
            digits=list(held.frame.digits),
            confidence=held.frame.confidence,
            since=held.since,
            last_seen=held.last_seen,
            frames_confirmed=held.frames_confirmed,
            seq=held.seq,
        )

    @property
    def streak(self) -> tuple[str | None, int]:
        """The number the current run of frames agrees on, and how many frames it has."""
        return self._candidate, self._streak

    def observe(self, frame: FrameReading, now: datetime | None = None) -> StableReading | None:
        """Feed one frame; returns the new stable reading when this frame changed it."""
        now = now or datetime.now(UTC)
        if not frame.certain:
            self.interrupt()
            return None
        if self._streak and frame.number == self._candidate:
            self._streak += 1
        else:
            self._candidate, self._streak = frame.number, 1
        held = self._held
        if held is not None and held.frame.number == frame.number:
            held.last_seen = now
            held.frames_confirmed += 1
            return None
        if self._streak < self.frames_needed:
            return None
        self._changes += 1
        self._held = _Held(frame, now, now, self._streak, self._changes)
        return self.current

    def interrupt(self) -> None:
        """A frame that could not be had or was uncertain: the count starts over."""
        self._candidate, self._streak = None, 0
