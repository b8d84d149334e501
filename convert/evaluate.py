"""Run a .tflite model through the LiteRT interpreter (what the Pi uses) on MNIST's test set."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from device.runtime import TensorScale, to_probabilities
from train.report import classification_metrics

BATCH = 500


class TFLiteClassifier:
    """A LiteRT interpreter that takes float images in [0, 1] whatever the model's input type.

    Unlike device.runtime.DigitModel it needs no sidecar: it is what writes the sidecar's figures.
    """

    def __init__(self, model: Path | bytes, threads: int = 1) -> None:
        from ai_edge_litert.interpreter import Interpreter

        source = {"model_content": model} if isinstance(model, bytes) else {
            "model_path": str(model)}
        self.interpreter = Interpreter(num_threads=threads, **source)
        self.input = self.interpreter.get_input_details()[0]
        self.output = self.interpreter.get_output_details()[0]
        self.input_scale = TensorScale(self.input)
        self.output_scale = TensorScale(self.output)
        self.batch = 0

    def _resize(self, batch: int) -> None:
        if batch != self.batch:
            self.interpreter.resize_tensor_input(self.input["index"], [batch, 28, 28, 1])
            self.interpreter.allocate_tensors()
            self.batch = batch

    def outputs(self, x: np.ndarray) -> np.ndarray:
        """The model's own outputs, dequantized: logits, or an older model's softmax."""
        self._resize(len(x))
        self.interpreter.set_tensor(self.input["index"], self.input_scale.quantize(x))
        self.interpreter.invoke()
        return self.output_scale.dequantize(self.interpreter.get_tensor(self.output["index"]))

    def probabilities(self, x: np.ndarray) -> np.ndarray:
        return to_probabilities(self.outputs(x))

    def outputs_all(self, x: np.ndarray, batch: int = BATCH) -> np.ndarray:
        return np.concatenate([self.outputs(x[i : i + batch]) for i in range(0, len(x), batch)])

    def predict_all(self, x: np.ndarray, batch: int = BATCH) -> np.ndarray:
        return to_probabilities(self.outputs_all(x, batch))

    def median_us_per_digit(self, x: np.ndarray, repeats: int = 500) -> float:
        """Median wall time of one single-digit invocation, the Pi's per-request case."""
        self._resize(1)
        times = []
        for image in x[:repeats]:
            started = time.perf_counter()
            self.probabilities(image[np.newaxis])
            times.append(time.perf_counter() - started)
        return float(np.median(times) * 1e6)


def evaluate_tflite(model: Path | bytes, x_test: np.ndarray, y_test: np.ndarray,
                    keras_outputs: np.ndarray | None = None, threads: int = 1) -> dict:
    """Accuracy, per-class report, confusion matrix, size and speed of a .tflite model (a
    file, or a flatbuffer not yet written: conversion measures it before putting it in place)."""
    classifier = TFLiteClassifier(model, threads=threads)
    probs = classifier.predict_all(x_test)
    metrics = classification_metrics(y_test, probs)
    metrics["bytes"] = len(model) if isinstance(model, bytes) else model.stat().st_size
    metrics["median_us_per_digit"] = round(classifier.median_us_per_digit(x_test), 1)
    metrics["threads"] = threads
    if keras_outputs is not None:  # probabilities or logits: only their argmax is compared
        agree = probs.argmax(1) == keras_outputs.argmax(1)
        metrics["agreement_with_keras"] = round(float(agree.mean()), 6)
        metrics["disagreements_with_keras"] = int((~agree).sum())
    return metrics
