"""The one JSON shape of a reading, wherever it is answered: `GET/POST /predict`, the command
line's `predict --json` and `capture --json`, and the preview page.

`reading_answer` builds it from a `device.reader.Reading`; `Answer` is the same shape as a
pydantic model (what /docs shows and what the HTTP answer is validated against). Kept free of
FastAPI so the command line can use it without loading the web stack.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal, Protocol

from pydantic import BaseModel, Field

if TYPE_CHECKING:
    from device.reader import DigitReading, Reading

# int8 outputs move in steps of 1/256 (0.0039): four decimals keep every step apart.
PROBABILITY_DECIMALS = 4
# Microseconds are the finest a timing here means anything.
MILLISECOND_DECIMALS = 3

Source = Literal["camera", "upload", "file"]


class Box(BaseModel):
    x: int
    y: int
    w: int
    h: int


class DigitFound(BaseModel):
    digit: int
    confidence: float
    uncertain: bool = Field(description="confidence below the model's calibrated threshold")
    box: Box = Field(description="where the digit is, in pixels of the full frame")


class ModelRef(BaseModel):
    name: str
    sha256: str


class Answer(BaseModel):
    digit: int | None = Field(description="the largest digit in view; null when none was found")
    confidence: float | None
    uncertain: bool | None = Field(
        description="true when any digit read is below the model's calibrated confidence "
        "threshold: `digit` is still the best guess; null when no digit was found"
    )
    probabilities: list[float] | None = Field(description="ten probabilities, for 0..9")
    digits: list[DigitFound] = Field(description="every digit found, left to right")
    number: str | None = Field(description="the digits read left to right, e.g. '42'")
    reason: str | None = Field(description="why no digit was found (null when one was)")
    source: Source = Field(
        description="camera (a frame captured), upload (POST /predict) or file (the command "
        "line's predict)"
    )
    file: str | None = Field(description="the image file read (source file); null otherwise")
    timings_ms: dict[str, float] = Field(
        description="capture (the camera read, or decoding the upload or file), preprocess, "
        "inference, total"
    )
    model: ModelRef


class NamedModel(Protocol):
    name: str
    sha256: str


def _probability(value: float) -> float:
    return round(float(value), PROBABILITY_DECIMALS)


def digit_answer(found: DigitReading) -> dict[str, Any]:
    """One digit of a reading, as `DigitFound`."""
    return {
        "digit": int(found.digit),
        "confidence": _probability(found.confidence),
        "uncertain": bool(found.uncertain),
        "box": dict(zip("xywh", (int(v) for v in found.box), strict=True)),
    }


def reading_answer(
    reading: Reading,
    *,
    source: Source,
    model: NamedModel,
    capture_ms: float | None = None,
    total_ms: float | None = None,
    file: str | None = None,
) -> dict[str, Any]:
    """The answer for `reading`; `capture_ms` and `total_ms` join its timings when measured."""
    timings = {} if capture_ms is None else {"capture": capture_ms}
    timings.update(reading.timings_ms)
    if total_ms is not None:
        timings["total"] = total_ms
    return {
        "digit": None if reading.digit is None else int(reading.digit),
        "confidence": None if reading.confidence is None else _probability(reading.confidence),
        "uncertain": reading.uncertain,
        "probabilities": (
            None if reading.probabilities is None
            else [_probability(p) for p in reading.probabilities]
        ),
        "digits": [digit_answer(found) for found in reading.digits],
        "number": reading.number,
        "reason": reading.reason,
        "source": source,
        "file": file,
        "timings_ms": {
            stage: round(float(ms), MILLISECOND_DECIMALS) for stage, ms in timings.items()
        },
        "model": {"name": model.name, "sha256": model.sha256},
    }
