"""Everything a request needs, built once at start: settings, model, reader, camera, metrics."""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import anyio

from device.service.camera_supervisor import CameraSupervisor, open_camera_spec
from device.service.metrics import ServiceMetrics
from device.service.readings import SharedFrameReadings
from device.service.settings import ServiceSettings, how_to_choose_camera
from device.service.uploads import PixelBudget, ReceivingBudget

if TYPE_CHECKING:
    from device.service.watch import WatchLoop

# Decoding and reading are CPU work for the 2..4 cores of a Pi: more threads only queue in the
# interpreter's lock and hold more decoded images in memory at once.
CPU_WORKERS = 2
# Largest uploads that may be on their way in at once (uploads.ReceivingBudget).
UPLOADS_RECEIVED_AT_ONCE = 4


@dataclass
class ServiceContext:
    settings: ServiceSettings
    model: object  # device.runtime.DigitModel (imported lazily: LiteRT is slow to import)
    reader: object  # device.reader.DigitReader
    camera: CameraSupervisor
    metrics: ServiceMetrics
    # Decoded pixels in memory at once, uploads' and the file: camera's: as many as the largest
    # picture allowed.
    decode_budget: PixelBudget
    cpu_limiter: anyio.CapacityLimiter = field(
        default_factory=lambda: anyio.CapacityLimiter(CPU_WORKERS)
    )
    camera_readings: SharedFrameReadings = field(init=False)
    # Upload bytes being received at once: four of the largest uploads allowed.
    receiving: ReceivingBudget = field(init=False)
    # The watch loop and its publishers (DIGITS_WATCH, DIGITS_MQTT_URL); None when off.
    watch: WatchLoop | None = None

    def __post_init__(self) -> None:
        self.camera_readings = SharedFrameReadings(self.reader, self.cpu_limiter)
        self.receiving = ReceivingBudget(UPLOADS_RECEIVED_AT_ONCE * self.settings.max_upload_bytes)

    def watch_status(self) -> dict[str, Any]:
        """The watch loop and its publishers, for /readyz and the preview page."""
        if self.watch is None:
            return {"watch": None, "publishers": []}
        return {"watch": self.watch.status(), "publishers": self.watch.publisher_status()}


def load_model(settings: ServiceSettings) -> object:
    """The verified model; raises device.sidecar.ModelError with a user-facing message."""
    from device.runtime import DigitModel

    return DigitModel(settings.model, threads=settings.threads)


def build_context(settings: ServiceSettings, model: object | None = None) -> ServiceContext:
    """The context for `settings`; the camera is not started yet (the app's lifespan does it)."""
    from device.picture import PixelLimit
    from device.reader import DigitReader

    model = model if model is not None else load_model(settings)
    metrics = ServiceMetrics()
    metrics.model_info.labels(name=model.name, sha256=model.sha256, runtime=model.runtime).set(1)
    if hasattr(model, "digits_answered"):  # a stand-in model in tests may not count
        metrics.count_model_answers(model.digits_answered)
    reader = DigitReader(model, roi=settings.roi)
    decode_budget = PixelBudget(settings.max_image_pixels)
    camera = CameraSupervisor(
        settings.camera,
        read_timeout=settings.capture_timeout_s,
        retry_interval=settings.camera_retry_s,
        # A file: camera's frames no larger than the reader needs: the preview, the reading
        # and the next frame each hold one at once. Its pictures are held to the uploads'
        # limit (a refusal names the setting the service reads) and decoded within their
        # budget: a 40-megapixel PNG decoded for the camera while one was uploaded took the
        # service to 560 MB, past the unit's 400 MB cap.
        opener=functools.partial(
            open_camera_spec, least_side=reader.picture_side,
            limit=PixelLimit(settings.max_image_pixels, "DIGITS_MAX_IMAGE_PIXELS",
                             decode_budget.room_for)),
        on_error=lambda kind: metrics.camera_errors.labels(kind=kind).inc(),
        on_state=lambda up: metrics.camera_up.set(1 if up else 0),
        hint=how_to_choose_camera(),
    )
    context = ServiceContext(
        settings=settings,
        model=model,
        reader=reader,
        camera=camera,
        metrics=metrics,
        decode_budget=decode_budget,
    )
    if settings.watching:
        from device.service.watch import WatchLoop

        context.watch = WatchLoop(context)
    return context
