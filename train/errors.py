"""Errors whose message is meant for the user, raised without importing TensorFlow."""

from __future__ import annotations

import tempfile
import zipfile
from pathlib import Path

from train.publish import missing_folders, remove_while_empty


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


class OutputError(Exception):
    """An output folder cannot be written; the message names it and says what to pass instead."""


def writable_folder(path: Path, flag: str = "--out") -> Path:
    """Prove a file can be written in ``path`` (a folder, created if needed), or raise
    OutputError.

    Called before MNIST is loaded and before any training or conversion, so that a wrong
    folder costs a second, not the minutes of work whose results could then not be saved.
    The folders it had to create are removed again: a command refused later (a bad teacher)
    leaves nothing behind, and the command makes them when it writes.
    """
    if path.exists() and not path.is_dir():
        raise OutputError(f"{flag} {path} is a file, not a folder; pass a folder (it is "
                          "created if needed)")
    created = missing_folders(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=path):
            pass
    except OSError as exc:
        raise OutputError(f"cannot write to {flag} {path} ({exc.strerror or exc}); pass a "
                          "folder you can write to") from None
    finally:
        remove_while_empty(created)
    return path
