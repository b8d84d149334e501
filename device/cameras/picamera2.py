"""The Raspberry Pi camera through picamera2: the Y plane of the YUV420 lores stream is gray.

One long-lived ``Picamera2`` object serves every read; it is only rebuilt after a failure.
picamera2 returns a YUV420 stream as one (h*3//2, stride) uint8 array: the first h rows are
the Y (luma) plane, and each row is ``stride`` bytes, which can be wider than the image, so the
padding on the right is cut off here.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from device.cameras.base import Camera, CameraError

DEFAULT_SIZE = (640, 480)  # width, height of the lores stream that is read


class Picamera2Camera(Camera):
    name = "picamera2"

    def __init__(self, size: tuple[int, int] = DEFAULT_SIZE, camera_num: int = 0) -> None:
        super().__init__()
        self.size = size
        self.camera_num = camera_num
        self._picam2: Any = None
        self._lores_size = size

    def _open(self) -> None:
        try:
            from picamera2 import Picamera2  # only on a Pi; imported when this camera is used
        except ImportError as exc:
            raise CameraError(
                "picamera2 is not installed for this Python (on Raspberry Pi OS: sudo apt "
                "install python3-picamera2; a venv sees it only when made with "
                "--system-site-packages, as systemd/install.sh makes its own)"
            ) from exc
        try:
            picam2 = Picamera2(self.camera_num)
        except Exception as exc:  # libcamera raises plain RuntimeError/IndexError
            raise CameraError(
                f"no Pi camera {self.camera_num} found ({exc}); check the ribbon cable and "
                "that `rpicam-hello --list-cameras` lists it"
            ) from exc
        try:
            width, height = self.size
            config = picam2.create_video_configuration(
                main={"size": (width * 2, height * 2)},
                lores={"size": (width, height), "format": "YUV420"},
                buffer_count=4,
            )
            picam2.configure(config)
            # libcamera may align the requested size; read back what was granted.
            self._lores_size = tuple(picam2.camera_configuration()["lores"]["size"])
            picam2.start()
        except Exception as exc:
            picam2.close()
            raise CameraError(f"the Pi camera could not be configured ({exc})") from exc
        self._picam2 = picam2

    def _read(self) -> np.ndarray:
        yuv = self._picam2.capture_array("lores")
        width, height = self._lores_size
        if yuv.ndim != 2 or yuv.shape[0] < height or yuv.shape[1] < width:
            raise CameraError(
                f"picamera2 returned a lores buffer of shape {yuv.shape}, expected at least "
                f"({height * 3 // 2}, {width}) for YUV420 {width}x{height}"
            )
        return np.ascontiguousarray(yuv[:height, :width])

    def _close(self) -> None:
        picam2, self._picam2 = self._picam2, None
        if picam2 is None:
            return
        try:
            picam2.stop()
        finally:
            picam2.close()
