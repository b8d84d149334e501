"""The JSON the service answers with besides readings (they also document /docs).

A reading's answer is `device.answer.Answer`, shared with the command line.
"""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from device.answer import DigitFound, ModelRef


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
