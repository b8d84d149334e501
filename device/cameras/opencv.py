"""OpenCV VideoCapture: a USB camera index, a video file (looped) or a stream URL."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import cv2
import numpy as np

from device.cameras.base import Camera, CameraError

# How long a network stream may take to open or to deliver a frame. OpenCV's own default is
# 30 s, which a host that accepts the connection and never answers took: the camera loop
# stuck that long went stale for the systemd watchdog (camera_supervisor), and the service
# was restarted over a camera that is merely away.
STREAM_TIMEOUT_MS = 5000


class OpenCVCamera(Camera):
    def __init__(self, source: int | str) -> None:
        super().__init__()
        self.source = source
        self.name = f"opencv:{source}"
        self._is_file = isinstance(source, str) and Path(source).is_file()
        self._capture: Any = None

    def _open(self) -> None:
        source = self.source
        if isinstance(source, str) and "://" not in source and not Path(source).exists():
            raise CameraError(f"{self.name}: video file {self.source} does not exist")
        if isinstance(source, str) and "://" in source:
            capture = cv2.VideoCapture(source, cv2.CAP_ANY, [
                cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, STREAM_TIMEOUT_MS,
                cv2.CAP_PROP_READ_TIMEOUT_MSEC, STREAM_TIMEOUT_MS])
        else:
            capture = cv2.VideoCapture(source)
        if not capture.isOpened():
            capture.release()
            hint = "; is it plugged in and free?" if isinstance(self.source, int) else ""
            raise CameraError(f"{self.name}: cannot be opened{hint}")
        self._capture = capture

    def _grab(self) -> np.ndarray | None:
        ok, frame = self._capture.read()
        return frame if ok and frame is not None and frame.size else None

    def _read(self) -> np.ndarray:
        frame = self._grab()
        if frame is None and self._is_file:
            # End of the file: start it again, so a video serves as an endless camera.
            self._capture.release()
            self._capture = None
            self._open()
            frame = self._grab()
        if frame is None:
            raise CameraError(f"{self.name}: no frame (the device stopped or the stream ended)")
        return frame

    def _close(self) -> None:
        capture, self._capture = self._capture, None
        if capture is not None:
            capture.release()
