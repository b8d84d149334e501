"""Errors whose message is meant for the user, raised without importing TensorFlow."""

from __future__ import annotations

import zipfile
from pathlib import Path


class ModelFileError(Exception):
    """A saved model is missing or unreadable; the message says which file and why."""


def check_keras_file(path: Path) -> None:
    """Raise ModelFileError unless `path` looks like a saved Keras model (a .keras zip archive).

    Cheap, so callers check before loading MNIST or TensorFlow: a wrong path fails at once.
    """
    if not path.exists():
        raise ModelFileError(f"model file {path} does not exist; train one with python -m train")
    if not path.is_file():
        raise ModelFileError(f"{path} is a folder, not a model file; pass its model.keras")
    if not zipfile.is_zipfile(path):
        raise ModelFileError(
            f"{path} is not a readable Keras model: a .keras file is the zip archive that "
            "python -m train (model.save) writes"
        )
