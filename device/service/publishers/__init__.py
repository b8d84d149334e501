"""Where stable readings go besides HTTP: one small module per backend, picked by the settings.

A backend module has `configured(settings) -> bool` and `create(settings, metrics, model_name)
-> Publisher`; `build_publishers` asks each module in BACKENDS and creates the configured ones.
A backend's own dependencies are imported only when it is configured.
"""

from __future__ import annotations

import importlib

from device.service.metrics import ServiceMetrics
from device.service.publishers.base import Publisher
from device.service.settings import ServiceSettings

__all__ = ["BACKENDS", "Publisher", "build_publishers"]

BACKENDS = ("device.service.publishers.mqtt",)


def build_publishers(
    settings: ServiceSettings, metrics: ServiceMetrics, model_name: str
) -> list[Publisher]:
    """The publishers the settings ask for, created but not started."""
    publishers = []
    for name in BACKENDS:
        backend = importlib.import_module(name)
        if backend.configured(settings):
            publishers.append(backend.create(settings, metrics, model_name))
    return publishers
