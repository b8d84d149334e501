"""No camera: every open fails with the reason, so callers report it instead of crashing."""

from __future__ import annotations

import numpy as np

from device.cameras.base import Camera, CameraError


class NoCamera(Camera):
    name = "none"

    def __init__(self, why: str = "no camera configured (none)") -> None:
        super().__init__()
        self.why = why

    def _open(self) -> None:
        raise CameraError(self.why)

    def _read(self) -> np.ndarray:  # unreachable: open always fails
        raise CameraError(self.why)

    def _close(self) -> None:
        return None
