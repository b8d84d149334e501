"""Frames from an image file, or from a folder of images served in name order, cycled."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from device.camera_specs import images_in, no_image_at, no_images_in
from device.cameras.base import Camera, CameraError, UnreadablePictureError
from device.picture import PictureError, PixelLimit, read_picture

log = logging.getLogger(__name__)


class FileCamera(Camera):
    def __init__(self, path: str | Path, least_side: int | None = None,
                 limit: PixelLimit | None = None) -> None:
        """``least_side``: the longer side a reader needs (DigitReader.picture_side); each
        frame is no larger (device.picture.read_picture). None: as large as the file.
        ``limit``: the most pixels an image may declare, the setting that raises it and the
        budget each is decoded within (device.picture.file_pixel_limit() unless given)."""
        super().__init__()
        self.path = Path(path)
        self.least_side = least_side
        self.limit = limit
        self.name = f"file:{self.path}"
        self._files: list[Path] = []
        self._next = 0
        self._skipped: set[tuple[Path, str]] = set()  # said once each in the log

    def _open(self) -> None:
        self._files = self._listed()
        self._next = 0

    def _listed(self) -> list[Path]:
        try:
            if self.path.is_file():
                return [self.path]
            if self.path.is_dir():
                files = images_in(self.path)
                if not files:
                    raise CameraError(f"{self.name}: {no_images_in(self.path)}")
                return files
        except OSError as exc:  # e.g. the service's user may not read the folder
            raise CameraError(f"{self.name}: {exc.strerror or exc}; give the service's user "
                              "read access to it") from None
        raise CameraError(f"{self.name}: {no_image_at(self.path)}")

    def _read(self) -> np.ndarray:
        """The next image that reads. In a folder, one that does not (damaged, too large,
        replaced by something else) is skipped with a warning, so the others go on being
        served; the folder is listed again at the end of each round, so images added while
        serving join in. Only a round in which no image reads is a failure: its error names
        each image's problem, so the skips are warned of only once another image has read."""
        problems: list[tuple[Path, str]] = []
        while len(problems) < len(self._files):
            if self._next >= len(self._files):
                self._files, self._next = self._listed(), 0
            path = self._files[self._next]
            self._next += 1
            try:
                frame = read_picture(path, self.least_side, self.limit)
            except PictureError as exc:
                problems.append((path, exc.detail))
                continue
            for skipped in problems:
                if skipped not in self._skipped:
                    self._skipped.add(skipped)
                    log.warning("%s: skipping %s: %s", self.name, skipped[0].name, skipped[1])
            return frame
        said = "; ".join(f"{path.name}: {detail}" for path, detail in problems)
        raise UnreadablePictureError(f"{self.name}: {said}")

    def first_frame(self) -> np.ndarray:
        frame = self.read()
        self._next -= 1  # the first request sees it again
        return frame

    def _close(self) -> None:
        self._files = []
