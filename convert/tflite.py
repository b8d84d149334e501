"""Keras → TFLite conversion in four precisions, and the proof that int8 means integer-only."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import keras

QUANT_MODES = ("int8", "float16", "dynamic", "float32")
REPRESENTATIVE_SAMPLES = 500
# Tensor types an integer-only graph may carry between operators.
INTEGER_TYPES = {np.dtype(t) for t in ("int8", "uint8", "int16", "int32", "int64", "bool")}


class ConversionError(Exception):
    """The model could not be converted, or the result breaks the integer-only promise."""


def representative_data(x_train: np.ndarray, seed: int = 0,
                        count: int = REPRESENTATIVE_SAMPLES) -> np.ndarray:
    """A seeded random draw from the training set, for calibrating int8 ranges."""
    rng = np.random.default_rng(seed)
    return x_train[rng.choice(len(x_train), size=min(count, len(x_train)), replace=False)]


def convert(model: keras.Model, quant: str, calibration: np.ndarray | None = None) -> bytes:
    """Convert ``model`` to a .tflite flatbuffer in the given precision."""
    if quant not in QUANT_MODES:
        raise ConversionError(f"unknown --quant {quant!r}; choose one of {', '.join(QUANT_MODES)}")
    # Imported here, not at the top: `python -m convert --help` must not wait for TensorFlow.
    import tensorflow as tf

    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    if quant == "float16":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.target_spec.supported_types = [tf.float16]
    elif quant == "dynamic":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    elif quant == "int8":
        if calibration is None or not len(calibration):
            raise ConversionError("int8 conversion needs calibration images")

        def samples() -> Iterator[list[np.ndarray]]:
            for image in calibration:
                yield [image[np.newaxis].astype(np.float32)]

        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = samples
        # Only integer builtins: conversion fails rather than silently keeping a float op.
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        converter.inference_input_type = tf.int8
        converter.inference_output_type = tf.int8
    try:
        flatbuffer = converter.convert()
    except Exception as exc:  # the converter raises a zoo of types; the message is what matters
        raise ConversionError(f"TFLite conversion ({quant}) failed: {exc}") from exc
    if quant == "int8":
        offending = float_operators(flatbuffer)
        if offending:
            raise ConversionError(
                "int8 model is not integer-only; float operators: " + ", ".join(offending)
            )
    return flatbuffer


@dataclass(frozen=True)
class OperatorInfo:
    index: int
    name: str
    tensor_types: tuple[str, ...]


def operators(flatbuffer: bytes) -> list[OperatorInfo]:
    """Every operator of the graph with the types of the tensors it reads and writes."""
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_content=flatbuffer)
    tensors = {t["index"]: t for t in interpreter.get_tensor_details()}
    found = []
    for op in interpreter._get_ops_details():  # the only API that lists operators
        indices = [i for i in (*op["inputs"], *op["outputs"]) if i >= 0]
        types = tuple(np.dtype(tensors[i]["dtype"]).name for i in indices if i in tensors)
        found.append(OperatorInfo(op["index"], op["op_name"], types))
    return found


def float_operators(flatbuffer: bytes) -> list[str]:
    """Operators that would run on float kernels, or convert to/from float mid-graph."""
    offending = []
    for op in operators(flatbuffer):
        floats = [t for t in op.tensor_types if np.dtype(t) not in INTEGER_TYPES]
        if floats or op.name == "DEQUANTIZE":
            offending.append(f"#{op.index} {op.name} ({'/'.join(op.tensor_types)})")
    return offending
