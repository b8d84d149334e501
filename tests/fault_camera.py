"""A camera whose faults a test switches on and off, for `--camera python:tests.fault_camera:...`.

`FaultCamera(control_path)` reads the JSON control file on every open and read:
`{"mode": "ok" | "raise" | "hang" | "empty" | "fail_open", "hang_s": 2.0, "image": "/path.png"}`.
"hang" sleeps `hang_s` inside the read (a stuck driver), then returns the image. Each open and
close is appended to `<control>.events`, so a test can see that the camera was released.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import cv2
import numpy as np

from device.cameras.base import Camera, CameraError


def write_control(path: Path, **control: object) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(control))
    tmp.replace(path)  # atomic: the camera never reads half a file


class FaultCamera(Camera):
    name = "fault"

    def __init__(self, control_path: str) -> None:
        super().__init__()
        self.control_path = Path(control_path)
        self.events = self.control_path.with_suffix(".events")

    def _control(self) -> dict:
        return json.loads(self.control_path.read_text())

    def _event(self, what: str) -> None:
        with self.events.open("a") as f:
            f.write(what + "\n")

    def _open(self) -> None:
        if self._control().get("mode") == "fail_open":
            raise CameraError("fault camera: no such device (injected)")
        self._event("open")

    def _read(self) -> np.ndarray:
        control = self._control()
        mode = control.get("mode", "ok")
        if mode == "raise":
            raise CameraError("fault camera: read failed (injected)")
        if mode == "empty":
            return np.zeros((0, 0), dtype=np.uint8)
        if mode == "hang":
            time.sleep(float(control.get("hang_s", 3600)))
        return cv2.imread(str(control["image"]), cv2.IMREAD_GRAYSCALE)

    def _close(self) -> None:
        self._event("close")
