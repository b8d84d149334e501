"""No camera: every open fails with the reason, so callers report it instead of crashing."""

from __future__ import annotations

import numpy as np

from device.cameras.base import Camera, CameraError

HOW_TO = "pass --camera auto, picamera2, opencv:0, opencv:/path/video.mp4 or file:/path"


class NoCamera(Camera):
    name = "none"

    def __init__(self, why: str = "no camera configured") -> None:
        super().__init__()
        self.why = why

    def _open(self) -> None:
        raise CameraError(f"{self.why}; {HOW_TO}")

    def _read(self) -> np.ndarray:  # unreachable: open always fails
        raise CameraError(f"{self.why}; {HOW_TO}")

    def _close(self) -> None:
        return None
