"""Camera sources behind one interface; ``open_camera(spec)`` picks and opens one.

Specs: ``auto`` (picamera2, then opencv:0), ``picamera2``, ``opencv:0`` (a device index),
``opencv:/path/video.mp4``, ``opencv:rtsp://...``, ``file:/path/image_or_folder``, ``none``.
"""

from __future__ import annotations

from device.cameras.base import Camera, CameraError
from device.cameras.files import FileCamera
from device.cameras.none import HOW_TO, NoCamera
from device.cameras.opencv import OpenCVCamera
from device.cameras.picamera2 import Picamera2Camera

__all__ = ["Camera", "CameraError", "make_camera", "open_camera"]


def make_camera(spec: str) -> Camera:
    """The (unopened) camera a spec names; raises CameraError for a spec that means nothing."""
    kind, _, arg = spec.strip().partition(":")
    if kind == "picamera2" and not arg:
        return Picamera2Camera()
    if kind == "opencv" and arg:
        return OpenCVCamera(int(arg) if arg.isdigit() else arg)
    if kind == "file" and arg:
        return FileCamera(arg)
    if kind == "none" and not arg:
        return NoCamera()
    raise CameraError(
        f"unknown camera spec {spec!r}; use auto, picamera2, opencv:0, opencv:/path/video.mp4, "
        "opencv:rtsp://host/stream, file:/path/image_or_folder or none"
    )


def open_camera(spec: str) -> Camera:
    """An opened camera for ``spec``; ``auto`` takes the first that opens. Raises CameraError."""
    if spec.strip() != "auto":
        camera = make_camera(spec)
        camera.open()
        return camera
    failures = []
    for candidate in ("picamera2", "opencv:0"):
        camera = make_camera(candidate)
        try:
            camera.open()
        except CameraError as exc:
            failures.append(str(exc))
            continue
        return camera
    raise CameraError(f"no camera found ({'; '.join(failures)}); {HOW_TO}")
