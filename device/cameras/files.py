"""Frames from an image file, or from a folder of images served in name order, cycled."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from device.cameras.base import Camera, CameraError

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".pgm", ".ppm"}


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
            self._files = sorted(
                p for p in self.path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES
            )
            if not self._files:
                kinds = ", ".join(sorted(IMAGE_SUFFIXES))
                raise CameraError(f"{self.name}: the folder holds no images ({kinds})")
        else:
            raise CameraError(f"{self.name}: no such file or folder")

    def _read(self) -> np.ndarray:
        path = self._files[self._next % len(self._files)]
        self._next = (self._next + 1) % len(self._files)
        frame = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if frame is None:
            raise CameraError(f"{self.name}: {path.name} is not a readable image")
        return frame

    def _close(self) -> None:
        self._files = []
