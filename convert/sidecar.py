"""The sidecar: everything the device needs to know about a .tflite file, in JSON beside it."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

FORMAT_VERSION = 1
LABELS = [str(d) for d in range(10)]
# How a frame must be turned into model input: MNIST's own recipe (LeCun et al.):
# white ink on black, the digit fitted into a 20x20 box, centred by centre of mass on 28x28.
PREPROCESSING = {
    "polarity": "light_on_dark",
    "value_range": [0.0, 1.0],
    "canvas": 28,
    "digit_box": 20,
    "centering": "center_of_mass",
}


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _tensor(detail: dict) -> dict:
    scale, zero_point = detail.get("quantization", (0.0, 0))
    return {
        "name": detail["name"],
        "shape": [int(d) for d in detail["shape"]],
        "dtype": np.dtype(detail["dtype"]).name,
        "scale": float(scale),
        "zero_point": int(zero_point),
    }


def build(tflite_path: Path, *, quant: str, arch: str, metrics: dict,
          versions: dict[str, str], source_model: str) -> dict:
    """The sidecar for a written .tflite file; metrics are merged in by the caller's evaluation."""
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=str(tflite_path))
    return {
        "format_version": FORMAT_VERSION,
        "model_file": tflite_path.name,
        "sha256": sha256_of(tflite_path),
        "bytes": tflite_path.stat().st_size,
        "labels": LABELS,
        "quantization": quant,
        "input": _tensor(interpreter.get_input_details()[0]),
        "output": _tensor(interpreter.get_output_details()[0]),
        "preprocessing": PREPROCESSING,
        "metrics": metrics,
        "source": {"arch": arch, "keras_model": source_model, **versions},
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
    }


def sidecar_path(tflite_path: Path) -> Path:
    return tflite_path.with_suffix(".json")


def write(tflite_path: Path, sidecar: dict) -> Path:
    path = sidecar_path(tflite_path)
    path.write_text(json.dumps(sidecar, indent=2) + "\n")
    return path
