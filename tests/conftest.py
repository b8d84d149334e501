"""Shared fixtures. MNIST comes from $MNIST_DATA_DIR (the Makefile points it at ../shared)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SHARED_DATA = REPO.parent / "shared" / "data"


@pytest.fixture(scope="session")
def mnist_dir() -> Path:
    path = Path(os.environ.get("MNIST_DATA_DIR", SHARED_DATA / "mnist"))
    if not path.is_dir():
        pytest.fail(f"MNIST not found at {path}; set MNIST_DATA_DIR (make test does)")
    return path


@pytest.fixture(scope="session")
def handwriting_dir() -> Path:
    path = SHARED_DATA / "handwriting_dev"
    if not path.is_dir():
        pytest.fail(f"handwriting_dev not found at {path}")
    return path
