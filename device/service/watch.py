"""The watch loop: reads the camera at DIGITS_WATCH_FPS and keeps the stable reading.

It captures through the service's one camera supervisor and reads through the shared reading
(`ServiceContext.camera_readings`), exactly like GET /predict and the preview: one camera, one
reader, captures never overlap. Each change of the stable reading goes to the /readings/stream
clients and to every publisher (MQTT); so does each change of the camera's health. Nothing it
hands a change to can make it wait.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from datetime import UTC, datetime
from typing import Any

import anyio

from device.service.camera_supervisor import CameraUnavailableError
from device.service.events import ReadingEvents
from device.service.publishers import Publisher, build_publishers
from device.service.schemas import CameraHealth, StableReading
from device.service.stable import FrameReading, StableTracker

log = logging.getLogger("device.service.watch")

# With the camera away there is nothing to read: its supervisor retries the open on its own
# schedule, and asking for frames faster than this would only repeat the same refusal.
UNAVAILABLE_PERIOD_S = 1.0


class WatchLoop:
    def __init__(self, context: Any, publishers: list[Publisher] | None = None) -> None:
        self.context = context  # device.service.context.ServiceContext
        settings = context.settings
        self.period = 1.0 / settings.watch_fps
        self.min_confidence = settings.watch_min_confidence
        self.tracker = StableTracker(settings.watch_stable_frames)
        metrics = context.metrics
        self.events = ReadingEvents(
            on_drop=metrics.stream_dropped.inc, on_clients=metrics.stream_clients.set
        )
        self.publishers = (
            publishers
            if publishers is not None
            else build_publishers(settings, metrics, context.model.name)
        )
        self.camera: CameraHealth | None = None
        self.frames_watched = 0
        self.started_at: datetime | None = None
        self._task: asyncio.Task | None = None

    @property
    def current(self) -> StableReading | None:
        return self.tracker.current

    async def start(self) -> None:
        self.started_at = datetime.now(UTC)
        for publisher in self.publishers:
            publisher.start()  # returns at once: connecting happens in the background
        self._task = asyncio.get_running_loop().create_task(self._run(), name="watch-loop")
        settings = self.context.settings
        log.info(
            "watching the camera at %g fps; a reading counts after %d agreeing frames",
            settings.watch_fps,
            settings.watch_stable_frames,
        )

    async def stop(self) -> None:
        self.events.close()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        for publisher in self.publishers:
            await anyio.to_thread.run_sync(publisher.close)

    def status(self) -> dict[str, Any]:
        """For /readyz and the preview page."""
        current = self.current
        candidate, streak = self.tracker.streak
        return {
            "fps": self.context.settings.watch_fps,
            "stable_frames": self.tracker.frames_needed,
            "frames_watched": self.frames_watched,
            "since": self.started_at.strftime("%Y-%m-%dT%H:%M:%SZ") if self.started_at else None,
            "reading": None if current is None else current.number,
            "has_reading": current is not None,
            "streak": {"number": candidate, "frames": streak},
            "camera": None if self.camera is None else self.camera.model_dump(),
            "stream_clients": self.events.clients,
        }

    def publisher_status(self) -> list[dict[str, Any]]:
        return [publisher.status() for publisher in self.publishers]

    # ---- the loop ---------------------------------------------------------------------

    async def _run(self) -> None:
        while True:
            started = time.monotonic()
            pause = self.period
            try:
                pause = await self._watch_one()
            except asyncio.CancelledError:
                raise
            except Exception:  # a bug must not silently stop every reading from updating
                log.exception("watch loop: reading a frame failed")
                self.tracker.interrupt()
                pause = UNAVAILABLE_PERIOD_S
            # The rate: the next capture starts no earlier than one period after this one did.
            await asyncio.sleep(max(0.0, started + pause - time.monotonic()))

    async def _watch_one(self) -> float:
        """Capture and read one frame; returns how long after its start the next one may be."""
        context = self.context
        try:
            frame = await context.camera.capture()
        except CameraUnavailableError as exc:
            self.tracker.interrupt()
            self._camera_is(CameraHealth(ready=False, reason=str(exc)))
            return max(self.period, UNAVAILABLE_PERIOD_S)
        self._camera_is(CameraHealth(ready=True, reason=None))
        self.frames_watched += 1
        try:
            reading = await context.camera_readings.read(frame)
        except ValueError:  # a frame the reader cannot use (the reader says why)
            self.tracker.interrupt()
            return self.period
        context.metrics.observe_reading("watch", reading.digit, reading.timings_ms)
        changed = self.tracker.observe(FrameReading.of(reading, self.min_confidence))
        if changed is not None:
            self._announce(changed)
        return self.period

    def _announce(self, reading: StableReading) -> None:
        self.context.metrics.stable_changes.inc()
        log.info(
            "stable reading: %s",
            "nothing in view" if reading.number is None else reading.number,
            extra={"number": reading.number, "confidence": reading.confidence, "seq": reading.seq},
        )
        self.events.publish(reading)
        for publisher in self.publishers:
            publisher.publish_reading(reading)

    def _camera_is(self, health: CameraHealth) -> None:
        previous, self.camera = self.camera, health
        # Only up/down is news: a failing camera's reason can change every second (it carries
        # timings), and each change would be another retained message.
        if previous is None or previous.ready != health.ready:
            for publisher in self.publishers:
                publisher.publish_camera(health)
