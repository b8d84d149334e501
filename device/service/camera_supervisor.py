"""The one camera the service owns: serialized capture, background reopen, hung-read timeout.

A single thread (the camera loop) does every open, read and close, so a driver is only ever
touched from one thread. Requests that arrive while a read is running wait for the *next* read
and share its frame: captures never overlap, and 32 concurrent GET /predict cost a handful of
reads rather than 32 queued ones. A read that runs past `read_timeout` fails its waiters with 503
at once (the event loop never waits on the driver); when the driver finally returns, the camera
is closed and reopened. A camera that cannot be opened is retried in the background after
`retry_interval` seconds, backing off to 5× that while it stays away, so it comes back without
a restart.

The loop's heartbeat (`healthy()`) is what the systemd watchdog checks: it goes stale only when
the loop itself is stuck in the driver, never merely because no camera is plugged in.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from device.picture import PixelLimit

log = logging.getLogger("device.service.camera")

IDLE_TICK_S = 0.25
# What an open may take beyond a read, before the loop counts as stuck: a network stream's
# open timeout and its first frame's (device.cameras.opencv.STREAM_TIMEOUT_MS, 5 s each).
OPENING_S = 12.0
# A camera that keeps failing to open is retried at most this many times the retry interval.
MAX_BACKOFF = 5
# How often a waiting request checks whether the running read has become overdue.
OVERDUE_POLL_S = 0.05


class CameraUnavailableError(Exception):
    """No frame can be had right now; the message says why (it becomes the 503's detail)."""


def open_camera_spec(spec: str, least_side: int | None = None,
                     limit: PixelLimit | None = None) -> Any:
    """An opened camera for `spec`; `least_side` and `limit` (a `device.picture.PixelLimit`) as
    for `device.cameras.make_camera`.

    Besides the specs `device.cameras.open_camera` knows, `python:MODULE:ATTR[:ARG]` calls
    `MODULE.ATTR(ARG)` and opens the result: a developer hook for a camera of one's own (the
    tests use it to inject faults). Raises the cameras' CameraError (or ImportError for a bad
    python: spec).
    """
    if spec.startswith("python:"):
        module_name, _, rest = spec.removeprefix("python:").partition(":")
        attr, _, arg = rest.partition(":")
        factory = getattr(importlib.import_module(module_name), attr)
        camera = factory(arg) if arg else factory()
        camera.open()
        return camera
    from device.cameras import open_camera

    return open_camera(spec, least_side, limit)


class CameraSupervisor:
    def __init__(
        self,
        spec: str,
        *,
        read_timeout: float = 5.0,
        retry_interval: float = 2.0,
        opener: Callable[[str], Any] = open_camera_spec,
        on_error: Callable[[str], None] | None = None,
        on_state: Callable[[bool], None] | None = None,
        hint: str = "",
    ) -> None:
        self.spec = spec
        self.hint = hint  # how to choose another camera, for the way the service was started
        self.enabled = spec.strip().lower() != "none"
        self.read_timeout = read_timeout
        self.retry_interval = retry_interval
        self._opener = opener
        self._on_error = on_error or (lambda kind: None)
        self._on_state = on_state or (lambda up: None)
        self._cond = threading.Condition()
        self._waiters: list[Future] = []
        self._stopping = False
        self._camera: Any = None
        self._reason: str | None = None if self.enabled else "camera disabled (--camera none)"
        self._opening = False
        self._next_open = 0.0
        self._failed_opens = 0
        self._first_attempt = threading.Event()
        self._read_started: float | None = None
        self._heartbeat = time.monotonic()
        self._thread: threading.Thread | None = None
        self.frames_read = 0

    # ---- lifecycle -------------------------------------------------------------------------

    def start(self, wait_for_first_open: float = 10.0) -> None:
        """Start the camera loop and wait (bounded) for its first open attempt."""
        if not self.enabled:
            return
        self._thread = threading.Thread(target=self._loop, name="camera-loop", daemon=True)
        self._thread.start()
        self._first_attempt.wait(wait_for_first_open)

    def close(self, join_timeout: float = 3.0) -> None:
        """Stop the loop and release the camera; a read stuck in the driver is not waited out."""
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(join_timeout)
            if self._thread.is_alive():
                log.warning("camera loop is stuck in the driver; releasing the camera anyway")
                self._release()

    # ---- what the service asks ------------------------------------------------------------

    @property
    def name(self) -> str:
        camera = self._camera
        return getattr(camera, "name", self.spec) if camera is not None else self.spec

    @property
    def ready(self) -> bool:
        return self.enabled and self._camera is not None and not self._read_overdue()

    @property
    def reason(self) -> str | None:
        """Why no frame can be had now (None when the camera is ready)."""
        if not self.enabled:
            return self._reason
        if self._read_overdue():
            return self._overdue_reason()
        if self._camera is None:
            if self._opening and self._reason is None:
                return f"camera {self.spec} is being opened"
            return self._reason or f"camera {self.spec} is not open yet"
        return None

    def healthy(self) -> bool:
        """The camera loop is alive and not stuck in the driver (for the systemd watchdog)."""
        if not self.enabled:
            return True
        if self._thread is None or not self._thread.is_alive():
            return False
        allowed = self.read_timeout * 2 + 2.0
        if self._opening:  # an open may take a stream's timeout, then its first frame's
            allowed += OPENING_S
        return time.monotonic() - self._heartbeat < allowed

    def status(self) -> dict[str, Any]:
        return {
            "enabled": self.enabled,
            "source": self.spec,
            "name": self.name if self.enabled else None,
            "ready": self.ready,
            "reason": self.reason,
            "frames_read": self.frames_read,
        }

    async def capture(self) -> np.ndarray:
        """The next frame read after this call (read-only; shared with concurrent callers)."""
        reason = self.reason
        if reason is not None:
            raise CameraUnavailableError(reason)
        future: Future = Future()
        with self._cond:
            self._waiters.append(future)
            self._cond.notify_all()
        waiting = asyncio.wrap_future(future)
        while True:
            done, _ = await asyncio.wait({waiting}, timeout=OVERDUE_POLL_S)
            if done:
                return waiting.result()
            if self._read_overdue():
                self._on_error("timeout")
                future.cancel()
                raise CameraUnavailableError(self._overdue_reason())

    # ---- the camera loop (its own thread) --------------------------------------------------

    def _read_overdue(self) -> bool:
        started = self._read_started
        return started is not None and time.monotonic() - started > self.read_timeout

    def _overdue_reason(self) -> str:
        started = self._read_started or time.monotonic()
        return (
            f"camera {self.name} has not returned a frame for {time.monotonic() - started:.1f} s "
            f"(limit {self.read_timeout:g} s); it will be reopened when the driver lets go"
        )

    def _loop(self) -> None:
        while True:
            self._heartbeat = time.monotonic()
            if self._camera is None and time.monotonic() >= self._next_open:
                self._try_open()
            with self._cond:
                if not self._waiters and not self._stopping:
                    self._cond.wait(IDLE_TICK_S)
                if self._stopping:
                    break
                batch, self._waiters = self._waiters, []
            if batch:
                self._serve(batch)
        self._release()

    def _try_open(self) -> None:
        self._opening = True
        camera = None
        try:
            camera = self._opener(self.spec)
            # Ready means a frame can be had: a camera that opens but cannot deliver (a file
            # that is no image, a device that never streams) is not ready.
            first = getattr(camera, "first_frame", None) or camera.read
            frame = first()
            if not isinstance(frame, np.ndarray) or frame.size == 0:
                raise _ReadError("empty", "the camera returned no frame")
        except Exception as exc:  # CameraError, a driver's own, or a python: spec that fails
            if camera is not None:
                with contextlib.suppress(Exception):
                    camera.close()
            self._camera = None
            self._fail("open", _describe(exc))
        else:
            self._camera = camera
            self.frames_read += 1
            if self._reason is not None:
                log.info("camera %s is back", self.name)
            else:
                log.info("camera %s opened", self.name)
            self._reason = None
            self._failed_opens = 0
            self._on_state(True)
        finally:
            self._opening = False
            self._first_attempt.set()

    def _serve(self, batch: list[Future]) -> None:
        live = [future for future in batch if future.set_running_or_notify_cancel()]
        if not live:
            return
        try:
            outcome: np.ndarray | Exception = self._read_one()
        except Exception as exc:
            outcome = exc
        for future in live:
            if future.done():  # its request gave up on a hung read
                continue
            if isinstance(outcome, Exception):
                future.set_exception(outcome)
            else:
                future.set_result(outcome)

    def _read_one(self) -> np.ndarray:
        """One frame from the camera; on any failure the camera is closed for a reopen."""
        if self._camera is None:
            raise CameraUnavailableError(self.reason or f"camera {self.spec} is not open")
        self._read_started = time.monotonic()
        try:
            frame = self._camera.read()
            if self._read_overdue():
                elapsed = time.monotonic() - self._read_started
                raise _ReadError("timeout", f"a read took {elapsed:.1f} s")
            if not isinstance(frame, np.ndarray) or frame.size == 0:
                raise _ReadError("empty", "the camera returned no frame")
        except Exception as exc:
            kind = exc.kind if isinstance(exc, _ReadError) else "read"
            if kind != "timeout":  # a timeout was counted by the requests that gave up
                self._on_error(kind)
            self._release()
            text = _describe(exc)
            # A camera's own errors start with its name (file:/x: b.png: not an image).
            self._fail(kind, f"camera {text}" if text.startswith(f"{self.name}: ")
                       else f"camera {self.name}: {text}")
            raise CameraUnavailableError(self._reason or "camera failed") from None
        finally:
            self._read_started = None
            self._heartbeat = time.monotonic()
        self.frames_read += 1
        frame.setflags(write=False)  # shared between concurrent requests
        return frame

    def retry_policy(self) -> str:
        """How a camera that fails is retried, in the words every log line uses."""
        return (f"retrying after {self.retry_interval:g} s, backing off to every "
                f"{self.retry_interval * MAX_BACKOFF:g} s while it stays away")

    def _fail(self, kind: str, reason: str) -> None:
        delay = self.retry_interval
        if kind == "open":
            self._on_error("open")
            # A camera that stays away is retried less often (up to MAX_BACKOFF× the interval):
            # each attempt can cost a driver probe and a line in the journal.
            delay = min(self.retry_interval * 2**self._failed_opens,
                        self.retry_interval * MAX_BACKOFF)
            self._failed_opens += 1
        first_time = self._reason != reason
        self._reason = reason
        self._next_open = time.monotonic() + delay
        self._on_state(False)
        if first_time:  # a camera that stays unplugged is logged once, not every retry
            hint = f"; {self.hint}" if self.hint and kind == "open" else ""
            log.warning("%s%s; %s", reason, hint, self.retry_policy())

    def _release(self) -> None:
        camera, self._camera = self._camera, None
        if camera is not None:
            try:
                camera.close()
            except Exception as exc:
                log.warning("closing camera %s failed: %s", self.spec, _describe(exc))


class _ReadError(Exception):
    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


def _describe(exc: BaseException) -> str:
    text = str(exc)
    return text if text else type(exc).__name__
