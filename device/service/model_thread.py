"""The model's own thread, for readings made on the event loop.

LiteRT lets go of Python's lock (the GIL) while the interpreter runs, so a model run on a thread
of its own overlaps the event loop's work for other requests: parsing uploads, decoding,
preprocessing, writing answers. Run on the loop itself, the model would stop all of that for
its millisecond. One long-lived thread and a queue cost far less per call than a worker-thread
hop (`anyio.to_thread`), which also carries the cancel scopes and limiter of a general pool.
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import threading
from typing import Any

import numpy as np

_STOP = None  # what close() queues to end the thread


class ModelThread:
    """`await predict(inputs)` runs `model.predict(inputs)` on this object's thread."""

    def __init__(self, model: Any) -> None:
        self._model = model  # device.runtime.DigitModel: thread-safe (it holds its own lock)
        self._jobs: queue.SimpleQueue[tuple[np.ndarray, asyncio.Future] | None] = (
            queue.SimpleQueue()
        )
        self._thread: threading.Thread | None = None

    async def predict(self, inputs: np.ndarray) -> np.ndarray:
        if self._thread is None:  # first use: started on the loop, so no race
            self._thread = threading.Thread(target=self._serve, name="model", daemon=True)
            self._thread.start()
        answer = asyncio.get_running_loop().create_future()
        self._jobs.put((inputs, answer))
        return await answer

    def close(self) -> None:
        """End the thread once the jobs queued before this call are done."""
        if self._thread is not None:
            self._jobs.put(_STOP)
            self._thread.join()
            self._thread = None

    def _serve(self) -> None:
        while (job := self._jobs.get()) is not _STOP:
            inputs, answer = job
            result, error = None, None
            try:
                result = self._model.predict(inputs)
            except Exception as exc:  # the caller's to raise, as if it had called predict
                error = exc
            # RuntimeError: the loop has closed, so nobody is waiting any more.
            with contextlib.suppress(RuntimeError):
                answer.get_loop().call_soon_threadsafe(_settle, answer, result, error)


def _settle(answer: asyncio.Future, result: np.ndarray | None, error: Exception | None) -> None:
    if answer.done():  # its request went away (client gone, shutdown) while the model ran
        return
    if error is not None:
        answer.set_exception(error)
    else:
        answer.set_result(result)
