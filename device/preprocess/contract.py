"""The sidecar's preprocessing contract: what this pipeline produces, and refusing other asks."""

from __future__ import annotations

from device.preprocess.mnist_style import CANVAS, DIGIT_BOX
from device.sidecar import ModelError

_CONTRACT = {
    "polarity": "light_on_dark",
    "value_range": [0, 1],
    "canvas": CANVAS,
    "digit_box": DIGIT_BOX,
    "centering": "center_of_mass",
}


def check_contract(preprocessing: dict) -> None:
    """Refuse a model whose sidecar asks for inputs this pipeline does not make."""
    for key, expected in _CONTRACT.items():
        if key in preprocessing and preprocessing[key] != expected:
            raise ModelError(
                f"the model expects preprocessing {key}={preprocessing[key]!r}, but this device "
                f"produces {expected!r}; use a model exported for MNIST-style inputs"
            )
