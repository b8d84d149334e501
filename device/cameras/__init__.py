"""Camera sources behind one interface; ``open_camera(spec)`` picks and opens one.

Specs: ``auto`` (picamera2, then opencv:0), ``picamera2``, ``opencv:0`` (a device index),
``opencv:/path/video.mp4``, ``opencv:rtsp://...``, ``file:/path/image_or_folder``, ``none``.
"""

from __future__ import annotations

from device.camera_specs import parse_camera_spec
from device.cameras.base import Camera, CameraError, UnreadablePictureError
from device.cameras.files import FileCamera
from device.cameras.none import NoCamera
from device.cameras.opencv import OpenCVCamera
from device.cameras.picamera2 import Picamera2Camera
from device.picture import PixelLimit

__all__ = ["Camera", "CameraError", "UnreadablePictureError", "make_camera", "open_camera"]

AUTO_ORDER = ("picamera2", "opencv:0")


def make_camera(spec: str, least_side: int | None = None,
                limit: PixelLimit | None = None) -> Camera:
    """The (unopened) camera a spec names; raises CameraError for a spec that cannot work.
    For a source that decodes pictures (file:): ``least_side``, the longer side a reader
    needs, which its frames need not pass; ``limit``, the most pixels a picture may declare
    and the setting that raises it (as FileCamera takes them)."""
    try:
        parsed = parse_camera_spec(spec)
    except ValueError as exc:
        raise CameraError(str(exc)) from None
    if parsed.kind == "picamera2":
        return Picamera2Camera()
    if parsed.kind == "opencv":
        return OpenCVCamera(int(parsed.arg) if parsed.arg.isdigit() else parsed.arg)
    if parsed.kind == "file":
        return FileCamera(parsed.arg, least_side, limit)
    if parsed.kind == "none":
        return NoCamera()
    raise CameraError(f"camera {spec!r} is a choice among cameras, not one; open it with "
                      "open_camera")


def open_camera(spec: str, least_side: int | None = None,
                limit: PixelLimit | None = None) -> Camera:
    """An opened camera for ``spec``; ``auto`` takes the first that opens. Raises CameraError
    (the caller adds how to choose another camera: a flag, a variable, a settings file).
    ``least_side``, ``limit``: as for make_camera."""
    if spec.strip() != "auto":
        camera = make_camera(spec, least_side, limit)
        camera.open()
        return camera
    failures = []
    for candidate in AUTO_ORDER:
        camera = make_camera(candidate)
        try:
            camera.open()
        except CameraError as exc:
            failures.append(str(exc))
            continue
        return camera
    raise CameraError(f"no camera found ({'; '.join(failures)})")
