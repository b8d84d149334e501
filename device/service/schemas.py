"""The JSON the service answers with (they also document /docs)."""

from __future__ import annotations

from typing import Literal

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


class Readiness(BaseModel):
    ready: bool
    reason: str | None
    model: ModelRef
    camera: dict
    uploads: bool = True
