"""Frames from an image file, or from a folder of images served in name order, cycled."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from device.camera_specs import images_in, no_images_in
from device.cameras.base import Camera, CameraError
from device.picture import PictureError, read_picture


class FileCamera(Camera):
    def __init__(self, path: str | Path) -> None:
        super().__init__()
        self.path = Path(path)
        self.name = f"file:{self.path}"
        self._files: list[Path] = []
        self._next = 0  # kept across reopen, so one bad file does not stall the cycle

    def _open(self) -> None:
        if self.path.is_file():
            self._files = [self.path]
        elif self.path.is_dir():
            self._files = images_in(self.path)
            if not self._files:
                raise CameraError(f"{self.name}: {no_images_in(self.path)}")
        else:
            raise CameraError(f"{self.name}: no such file or folder")

    def _read(self) -> np.ndarray:
        path = self._files[self._next % len(self._files)]
        self._next = (self._next + 1) % len(self._files)
        try:
            return read_picture(path)
        except PictureError as exc:
            raise CameraError(f"{self.name}: {path.name}: {exc.detail}") from None

    def first_frame(self) -> np.ndarray:
        frame = self.read()
        self._next = (self._next - 1) % len(self._files)  # the first request sees it again
        return frame

    def _close(self) -> None:
        self._files = []
