"""The JSON the service answers with besides readings (they also document /docs).

A reading's answer is `device.answer.Answer`, shared with the command line.
"""

from __future__ import annotations

from pydantic import BaseModel

from device.answer import ModelRef


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
