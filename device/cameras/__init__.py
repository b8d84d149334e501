"""Camera sources behind one interface; ``open_camera(spec)`` picks and opens one."""

from device.cameras.base import Camera, CameraError

__all__ = ["Camera", "CameraError"]
