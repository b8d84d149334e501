"""The interface every publisher implements."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

from device.service.schemas import CameraHealth, StableReading


class Publisher(ABC):
    """Sends the stable reading and the camera's health somewhere.

    Every method is called from the event loop and must return at once: connecting, retrying
    and sending happen in the background, and a destination that is down never blocks a
    reading, a request or start-up. A publisher keeps only the latest reading and camera
    health (bounded memory) and sends them again after it reconnects.
    """

    name: str

    @abstractmethod
    def start(self) -> None:
        """Begin connecting in the background."""

    @abstractmethod
    def publish_reading(self, reading: StableReading) -> None:
        """The stable reading changed."""

    @abstractmethod
    def publish_camera(self, health: CameraHealth) -> None:
        """The camera came up or went down."""

    @abstractmethod
    def status(self) -> dict[str, Any]:
        """Connection state for /readyz and the preview page (never a secret)."""

    @abstractmethod
    def close(self) -> None:
        """Say goodbye and disconnect (may block briefly: call it off the event loop)."""
