"""Preview frames: captured and JPEG-encoded once, shared by every viewer, at a capped rate.

One producer task takes a frame from the service's camera supervisor (the same single camera,
serialized capture, that GET /predict uses), encodes it to JPEG once and publishes it; every
/stream.mjpg viewer and the page's reading endpoint take the latest published frame. The
producer sleeps out the rest of each 1/fps period, so however many viewers watch, the camera
is read for the preview at most `fps` times a second, and /predict gets every other read.
It runs only while someone watches (a stream is open, or the page asked for a reading in the
last few seconds), so an unwatched service reads the camera only for /predict.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import textwrap
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import anyio
import cv2
import numpy as np

from device.service.camera_supervisor import CameraUnavailableError
from device.service.shutdown import on_exit_signal

log = logging.getLogger("device.service.preview")

# A Pi's frame can be 1640×1232; a preview does not need more than this, and a smaller JPEG is
# cheaper to encode and to send.
MAX_PREVIEW_WIDTH = 640
JPEG_QUALITY = 75
# Without a camera there is nothing new to show: the placeholder is refreshed slowly.
UNAVAILABLE_PERIOD_S = 1.0
# The page polls for readings; the producer keeps running this long after the last poll.
IDLE_AFTER_S = 3.0
BOUNDARY = "frame"


@dataclass(frozen=True)
class PreviewFrame:
    seq: int  # 1, 2, ... in publishing order
    jpeg: bytes  # what the stream sends: the frame, or a placeholder saying why there is none
    frame: np.ndarray | None  # the camera frame as captured (read-only); None without a camera
    reason: str | None  # why there is no camera frame
    captured_at: float  # time.monotonic()


def encode_jpeg(frame: np.ndarray) -> bytes:
    """The frame as a JPEG no wider than MAX_PREVIEW_WIDTH (the overlays use fractions)."""
    height, width = frame.shape[:2]
    if width > MAX_PREVIEW_WIDTH:
        scale = MAX_PREVIEW_WIDTH / width
        size = (MAX_PREVIEW_WIDTH, max(1, round(height * scale)))
        frame = cv2.resize(frame, size, interpolation=cv2.INTER_AREA)
    ok, data = cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
    if not ok:
        raise ValueError("JPEG encoding failed")
    return data.tobytes()


def placeholder_jpeg(reason: str) -> bytes:
    """A grey 4:3 picture that says why there is no camera view."""
    image = np.full((240, 320), 60, np.uint8)
    lines = textwrap.wrap(f"no camera view: {reason}", 40)[:8]
    for row, line in enumerate(lines):
        cv2.putText(image, line, (8, 30 + 22 * row), cv2.FONT_HERSHEY_SIMPLEX, 0.42, 230, 1,
                    cv2.LINE_AA)
    return encode_jpeg(image)


def multipart_part(jpeg: bytes) -> bytes:
    head = f"--{BOUNDARY}\r\nContent-Type: image/jpeg\r\nContent-Length: {len(jpeg)}\r\n\r\n"
    return head.encode() + jpeg + b"\r\n"


class FrameBroadcaster:
    def __init__(self, camera: Any, fps: float) -> None:
        self.camera = camera  # device.service.camera_supervisor.CameraSupervisor
        self.period = 1.0 / fps
        self.viewers = 0
        self.frames_published = 0
        self._latest: PreviewFrame | None = None
        self._published = asyncio.Event()
        self._producer: asyncio.Task | None = None
        self._last_demand = 0.0
        self._closing = False
        # JPEG encoding stays on one worker thread: the CPU pool is /predict's.
        self._encoder = anyio.CapacityLimiter(1)
        self._placeholders: dict[str, bytes] = {}
        self._signals_hooked = False

    # ---- what viewers ask --------------------------------------------------------------

    async def next_frame(self, after_seq: int, timeout: float) -> PreviewFrame | None:
        """The latest frame if newer than `after_seq`, else the next one; None on timeout."""
        self._want()
        deadline = time.monotonic() + timeout
        while not self._closing:
            latest = self._latest
            if latest is not None and latest.seq > after_seq:
                return latest
            published = self._published
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(published.wait(), remaining)
        return None

    async def fresh_frame(self, timeout: float) -> PreviewFrame | None:
        """A frame no older than two periods (waiting for one if needed); None on timeout."""
        self._want()
        latest = self._latest
        if latest is not None:
            period = self.period if latest.frame is not None else UNAVAILABLE_PERIOD_S
            if time.monotonic() - latest.captured_at <= 2 * max(period, self.period):
                return latest
        return await self.next_frame(latest.seq if latest else 0, timeout)

    async def stream(self) -> AsyncIterator[bytes]:
        """multipart/x-mixed-replace parts, one per new frame, until the viewer or we leave."""
        self._hook_exit_signals()
        self.viewers += 1
        try:
            seq = 0
            while not self._closing:
                frame = await self.next_frame(seq, timeout=1.0)
                if frame is not None:
                    seq = frame.seq
                    yield multipart_part(frame.jpeg)
        finally:
            self.viewers -= 1

    def close(self) -> None:
        """End every stream (an endless response would otherwise hold up a graceful shutdown)."""
        self._closing = True
        self._published.set()

    # ---- the producer ------------------------------------------------------------------

    def _want(self) -> None:
        self._last_demand = time.monotonic()
        if not self._closing and (self._producer is None or self._producer.done()):
            self._producer = asyncio.get_running_loop().create_task(self._produce())

    def _wanted(self) -> bool:
        recent = time.monotonic() - self._last_demand < IDLE_AFTER_S
        return not self._closing and (self.viewers > 0 or recent)

    async def _produce(self) -> None:
        while self._wanted():
            started = time.monotonic()
            try:
                frame = await self.camera.capture()
                jpeg = await anyio.to_thread.run_sync(encode_jpeg, frame, limiter=self._encoder)
                self._publish(jpeg, frame, None, started)
                pause = self.period
            except CameraUnavailableError as exc:
                self._publish(self._placeholder(str(exc)), None, str(exc), started)
                pause = max(self.period, UNAVAILABLE_PERIOD_S)
            except Exception:  # a bug must not silently freeze every viewer's picture
                log.exception("preview frame failed")
                pause = UNAVAILABLE_PERIOD_S
            # The cap: the next capture starts no earlier than one period after this one did.
            await asyncio.sleep(max(0.0, started + pause - time.monotonic()))

    def _publish(
        self, jpeg: bytes, frame: np.ndarray | None, reason: str | None, started: float
    ) -> None:
        self.frames_published += 1
        self._latest = PreviewFrame(self.frames_published, jpeg, frame, reason, started)
        published, self._published = self._published, asyncio.Event()
        published.set()

    def _placeholder(self, reason: str) -> bytes:
        if reason not in self._placeholders:
            if len(self._placeholders) > 16:  # reasons carry timings; keep the cache small
                self._placeholders.clear()
            self._placeholders[reason] = placeholder_jpeg(reason)
        return self._placeholders[reason]

    def _hook_exit_signals(self) -> None:
        """On SIGTERM/SIGINT end the streams, then let the server's own handler run."""
        if not self._signals_hooked:
            self._signals_hooked = on_exit_signal(self.close)
