"""Endless responses (the preview stream, the readings stream) must end when the service stops.

uvicorn waits for open responses before it shuts down, and a stream never ends by itself:
without this, every stop would wait out the whole graceful-shutdown timeout.
"""

from __future__ import annotations

import asyncio
import signal
import threading
from collections.abc import Callable
from typing import Any


def on_exit_signal(callback: Callable[[], None]) -> bool:
    """On SIGTERM/SIGINT run `callback` on this event loop, then the handler that was there.

    Call it from a coroutine on the loop. Returns False (and does nothing) off the main thread,
    where signal handlers cannot be set (tests running the app in a thread).
    """
    if threading.current_thread() is not threading.main_thread():
        return False
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        previous = signal.getsignal(signum)

        def handler(sig: int, frame: Any, previous: Any = previous) -> None:
            loop.call_soon_threadsafe(callback)
            if callable(previous):
                previous(sig, frame)

        signal.signal(signum, handler)
    return True
