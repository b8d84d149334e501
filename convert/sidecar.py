"""The sidecar: everything the device needs to know about a .tflite file, in JSON beside it."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from train.publish import published_together

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


def _tensor(detail: dict) -> dict:
    scale, zero_point = detail.get("quantization", (0.0, 0))
    return {
        "name": detail["name"],
        "shape": [int(d) for d in detail["shape"]],
        "dtype": np.dtype(detail["dtype"]).name,
        "scale": float(scale),
        "zero_point": int(zero_point),
    }


def build(flatbuffer: bytes, model_file: str, *, quant: str, arch: str, metrics: dict,
          versions: dict[str, str], source_model: str) -> dict:
    """The sidecar for ``flatbuffer``, to be published as ``model_file``; metrics are merged in
    by the caller's evaluation. Built from the bytes, not a file, so that it is complete before
    either file is put in place (`publish`)."""
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_content=flatbuffer)
    return {
        "format_version": FORMAT_VERSION,
        "model_file": model_file,
        "sha256": hashlib.sha256(flatbuffer).hexdigest(),
        "bytes": len(flatbuffer),
        "labels": LABELS,
        "quantization": quant,
        "input": _tensor(interpreter.get_input_details()[0]),
        "output": _tensor(interpreter.get_output_details()[0]),
        "preprocessing": PREPROCESSING,
        "metrics": metrics,
        "source": {"arch": arch, "keras_model": source_model, **versions},
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
    }


def read(path: Path) -> dict:
    """A sidecar's JSON, checked as the device checks it (an object of the supported format,
    its sha256, labels and confidence); ConversionError names the file and the fault."""
    from convert.tflite import ConversionError
    from device.sidecar import ModelError, Sidecar

    try:
        return Sidecar.load(path).raw
    except ModelError as exc:
        raise ConversionError(str(exc)) from None


def sidecar_path(tflite_path: Path) -> Path:
    return tflite_path.with_suffix(".json")


def _json_bytes(card: dict) -> bytes:
    return (json.dumps(card, indent=2) + "\n").encode()


def write(tflite_path: Path, sidecar: dict) -> Path:
    """Write (or rewrite) a model's sidecar whole or not at all: a run stopped part way (Ctrl-C,
    a full disk) leaves the previous file, never a truncated one the device would refuse."""
    path = sidecar_path(tflite_path)
    with published_together(path.parent) as staging:
        (staging / path.name).write_bytes(_json_bytes(sidecar))
    return path


def publish(flatbuffer: bytes, tflite_path: Path, sidecar: dict) -> None:
    """Put a verified model and its sidecar in place together, as `python -m train` puts a run's
    files (train.publish): until then the previous pair (which the device checks by sha256) is
    left as it was, so an interrupted conversion never leaves a model its sidecar disowns."""
    with published_together(tflite_path.parent) as staging:
        (staging / tflite_path.name).write_bytes(flatbuffer)
        (staging / sidecar_path(tflite_path).name).write_bytes(_json_bytes(sidecar))
