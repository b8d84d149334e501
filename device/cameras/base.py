"""The one camera interface every backend implements, with reopen-after-failure built in."""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod

import numpy as np

log = logging.getLogger(__name__)


class CameraError(Exception):
    """A camera could not be opened or read (message says what failed and how to fix it)."""


class UnreadablePictureError(CameraError):
    """The source is there, but the pictures it holds give no frame (a file: image that is
    damaged or too large): the fix is the picture, not another camera."""


class Camera(ABC):
    """A frame source. ``read`` reopens a source that failed before, so no source stays dead."""

    name: str = "camera"

    def __init__(self) -> None:
        self._is_open = False

    @property
    def is_open(self) -> bool:
        return self._is_open

    def open(self) -> None:
        """Acquire the device; safe to call again after ``close`` or a failed read."""
        if self._is_open:
            return
        self._open()
        self._is_open = True

    def read(self) -> np.ndarray:
        """One frame: (H,W) uint8 gray or (H,W,3) uint8 BGR. Raises CameraError."""
        if not self._is_open:
            log.info("%s: (re)opening", self.name)
            self.open()
        try:
            frame = self._read()
        except CameraError:
            # Release now so the next read starts from a fresh open instead of a dead handle.
            self.close()
            raise
        except Exception as exc:  # a driver's own exception types must not escape as a traceback
            self.close()
            raise CameraError(f"{self.name}: reading a frame failed ({exc})") from exc
        return frame

    def first_frame(self) -> np.ndarray:
        """A frame that proves the camera delivers, read right after opening: a camera is
        ready only once a frame has been had. Sources that replay (a folder) start over."""
        return self.read()

    def close(self) -> None:
        """Release the device; idempotent."""
        if not self._is_open:
            return
        self._is_open = False
        try:
            self._close()
        except Exception as exc:  # closing a broken device must not hide the original error
            log.warning("%s: error while closing (%s)", self.name, exc)

    def __enter__(self) -> Camera:
        self.open()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @abstractmethod
    def _open(self) -> None: ...

    @abstractmethod
    def _read(self) -> np.ndarray: ...

    @abstractmethod
    def _close(self) -> None: ...
