"""Each camera frame is read once: concurrent GET /predict that got the same frame share it."""

from __future__ import annotations

import asyncio
from typing import Any

import anyio
import numpy as np


class SharedFrameReadings:
    """The reading of the latest camera frame, computed once however many requests want it.

    The camera supervisor hands one frame object to every request that waited for the same
    capture; reading it again per request would only repeat the same CPU work.
    """

    def __init__(self, reader: Any, limiter: anyio.CapacityLimiter) -> None:
        self._reader = reader
        self._limiter = limiter
        self._frame: np.ndarray | None = None
        self._reading: asyncio.Future | None = None

    async def read(self, frame: np.ndarray) -> Any:
        if frame is not self._frame or self._reading is None:
            self._frame = frame
            self._reading = asyncio.ensure_future(
                anyio.to_thread.run_sync(self._reader.read, frame, limiter=self._limiter)
            )
        # shield: one impatient client going away must not cancel the others' reading.
        return await asyncio.shield(self._reading)
