"""The JSON the service answers with (they also document /docs)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field


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

    @classmethod
    def of(cls, found: Any) -> DigitFound:
        """From a device.reader.DigitReading."""
        x, y, w, h = (int(v) for v in found.box)
        return cls(
            digit=int(found.digit),
            confidence=float(found.confidence),
            uncertain=bool(found.uncertain),
            box=Box(x=x, y=y, w=w, h=h),
        )


class ModelRef(BaseModel):
    name: str
    sha256: str


class Prediction(BaseModel):
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
    source: Literal["camera", "upload"]
    timings_ms: dict[str, float] = Field(
        description="capture (camera read, or decoding the upload), preprocess, inference, total"
    )
    model: ModelRef


class ErrorBody(BaseModel):
    error: str
    detail: str
    expected: str | None = None


class StableReading(BaseModel):
    """What the watch loop holds: the same number, not uncertain, in consecutive frames.

    GET /reading, the /readings/stream events and the MQTT state message all carry this.
    """

    number: str | None = Field(
        description="the digits left to right, e.g. '42'; null: nothing in view (also a state)"
    )
    digits: list[DigitFound] = Field(
        description="every digit of the frame that made the reading stable, left to right"
    )
    confidence: float | None = Field(
        description="the weakest digit's confidence in that frame; null when nothing is in view"
    )
    since: datetime = Field(description="when the reading became stable (UTC)")
    last_seen: datetime = Field(
        description="the last frame that confirmed it (UTC); the stream and MQTT carry the "
        "value at the change, GET /reading the current one"
    )
    frames_confirmed: int = Field(description="frames that read it since it became stable")
    seq: int = Field(description="1, 2, ... one more per change; the stream's event id")


class CameraHealth(BaseModel):
    """The watch loop's view of the camera (the Home Assistant problem sensor)."""

    ready: bool = Field(description="the last capture delivered a frame")
    reason: str | None = Field(description="why it did not (null when it did)")


class Readiness(BaseModel):
    ready: bool
    reason: str | None
    model: ModelRef
    camera: dict
    uploads: bool = True
    watch: dict | None = Field(
        None, description="the watch loop (null when off): a detail, never a reason to be unready"
    )
    publishers: list[dict] = Field(
        default_factory=list,
        description="each publisher's connection state (MQTT): a detail, never a reason to be "
        "unready",
    )
