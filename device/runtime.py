"""Run the int8 TFLite digit model with LiteRT: verified, quantized, batched, thread-safe."""

from __future__ import annotations

import importlib
import logging
import threading
from collections import OrderedDict
from pathlib import Path
from typing import Any

import numpy as np

from device.sidecar import ModelError, Sidecar, file_sha256

log = logging.getLogger(__name__)

INPUT_SHAPE = (28, 28, 1)
# One interpreter per batch size seen; a reader sees few distinct sizes (1..3 digits per frame).
MAX_CACHED_BATCH_SIZES = 8


def load_interpreter_class() -> tuple[Any, str]:
    """The first TFLite interpreter available: LiteRT, then tflite_runtime, then TensorFlow.

    TensorFlow is imported only when both light runtimes are missing, so a Pi never pays for it.
    """
    for module_name, runtime in (
        ("ai_edge_litert.interpreter", "ai_edge_litert"),
        ("tflite_runtime.interpreter", "tflite_runtime"),
    ):
        try:
            return importlib.import_module(module_name).Interpreter, runtime
        except ImportError:
            continue
    try:
        # A string import keeps the ban on `import tensorflow` in device/ meaningful: this line
        # runs only on a workstation that has neither light runtime.
        return importlib.import_module("tensorflow").lite.Interpreter, "tensorflow.lite"
    except ImportError as exc:
        raise ModelError(
            "no TFLite runtime found; install one with `pip install ai-edge-litert`"
        ) from exc


# Interpreter threads a model may be given: more only spins threads up (a Pi has four cores),
# and from 2**31 on LiteRT refused the number with a traceback.
MAX_THREADS = 64


class TensorScale:
    """How one model tensor maps to floats: q = round(x / scale + zero_point), clipped to its
    integer type; a float tensor passes through. Read once from the interpreter's details, so
    a reading pays only for the arithmetic."""

    def __init__(self, details: dict) -> None:
        self.dtype = np.dtype(details["dtype"])
        scale, zero_point = details["quantization"]
        self.integer = bool(np.issubdtype(self.dtype, np.integer))
        if self.integer and scale == 0:
            raise ModelError("the model's integer tensors have no quantization scale; re-convert")
        self.scale = np.float32(scale)
        self.zero_point = np.float32(zero_point)
        if self.integer:
            info = np.iinfo(self.dtype)
            self.lowest, self.highest = info.min, info.max

    def quantize(self, x: np.ndarray) -> np.ndarray:
        if not self.integer:
            return x.astype(self.dtype)
        q = x / self.scale + self.zero_point
        np.rint(q, out=q)
        np.clip(q, self.lowest, self.highest, out=q)
        return q.astype(self.dtype)

    def dequantize(self, q: np.ndarray) -> np.ndarray:
        if not self.integer:
            return q.astype(np.float32)
        return (q.astype(np.float32) - self.zero_point) * self.scale


def to_probabilities(out: np.ndarray, temperature: float | None = None) -> np.ndarray:
    """The model's outputs as probabilities.

    A calibrated model ends in logits and its sidecar names a temperature: softmax(logits / T)
    on the host, in float, so confidence is not capped by an int8 softmax (which saturates at
    0.996) and means what calibration measured. Older models end in softmax, whose int8 rows
    sum to ~0.996..1.004 and are renormalised; uncalibrated logits get a plain softmax.
    """
    out = np.asarray(out, dtype=np.float32)
    if temperature is None and ((out < -1e-3).any()
                                or not np.allclose(out.sum(axis=1), 1.0, atol=0.05)):
        temperature = 1.0
    if temperature is None:
        out = np.clip(out, 0.0, None)
        return out / np.maximum(out.sum(axis=1, keepdims=True), np.float32(1e-12))
    # In place where it can be: a digit's few tiny numpy calls cost more than their arithmetic.
    # Each row's largest term is exp(0) = 1, so no sum is below 1.
    probs = out / np.float32(temperature)
    probs -= probs.max(axis=1, keepdims=True)
    np.exp(probs, out=probs)
    probs /= probs.sum(axis=1, keepdims=True)
    return probs


class DigitModel:
    """A verified TFLite digit classifier: (N,28,28,1) floats in [0,1] → (N,10) probabilities.

    When the sidecar names a first look, that cheaper model reads every digit first and this
    one only those it is not sure of (`convert.first_look` says why the answer is the same);
    ``first_look=False`` runs this model alone.
    """

    def __init__(self, model_path: Path, sidecar_path: Path | None = None, threads: int = 2,
                 first_look: bool = True):
        model_path = Path(model_path)
        sidecar_path = Path(sidecar_path) if sidecar_path else model_path.with_suffix(".json")
        if not model_path.is_file():
            raise ModelError(
                f"model file {model_path} not found; pass --model PATH or run `make model`"
            )
        if not 1 <= threads <= MAX_THREADS:
            raise ModelError(f"threads must be from 1 to {MAX_THREADS}, got {threads}")
        self.sidecar = Sidecar.load(sidecar_path)
        self.temperature = self.sidecar.temperature
        self.sha256 = file_sha256(model_path)
        if self.sha256 != self.sidecar.sha256:
            raise ModelError(
                f"model file {model_path} does not match its sidecar {sidecar_path} "
                f"(sha256 {self.sha256[:12]}… vs {self.sidecar.sha256[:12]}…); the two were not "
                "exported together: copy both from the same `python -m convert` run"
            )
        self.name = model_path.stem
        self.path = model_path
        self.threads = threads
        self._content = model_path.read_bytes()
        self._interpreter_class, self.runtime = load_interpreter_class()
        log.info("model %s runs on %s with %d thread(s)", self.name, self.runtime, threads)
        self._lock = threading.Lock()
        self._by_batch: OrderedDict[int, Any] = OrderedDict()
        self._resizable = True
        first = self._interpreter_for(1)
        self._input = first.get_input_details()[0]
        self._output = first.get_output_details()[0]
        self._check_shapes(model_path)
        self._input_scale = TensorScale(self._input)
        self._output_scale = TensorScale(self._output)
        self.first_look = self._load_first_look(sidecar_path) if first_look else None
        # Digits answered by the first look alone and by this model: how much the first look
        # saves on the pictures a device actually sees (the service exports them as a metric).
        self._answered = {"first_look": 0, "model": 0}
        self._answered_lock = threading.Lock()

    def _load_first_look(self, sidecar_path: Path) -> DigitModel | None:
        look = self.sidecar.first_look
        if look is None:
            return None
        path = sidecar_path.parent / look.model_file
        fix = ("copy it and its .json from the same `python -m convert first-look` run as "
               f"{sidecar_path.name}, or remove the sidecar's 'first_look' block")
        if not path.is_file():
            # The model alone reads every digit as it would with its first look, only slower:
            # a copy of just the model and its sidecar still serves.
            log.warning("model sidecar %s names a first look %s that is missing: running the "
                        "model alone (the same readings, slower); %s", sidecar_path, path, fix)
            return None
        first = DigitModel(path, threads=self.threads, first_look=False)
        if first.sha256 != look.sha256:
            raise ModelError(f"first look {path} is not the one {sidecar_path} names (sha256 "
                             f"{first.sha256[:12]}… vs {look.sha256[:12]}…); {fix}")
        if first.sidecar.labels != self.sidecar.labels:
            raise ModelError(f"first look {path} answers other labels than {self.path}; {fix}")
        return first

    def _check_shapes(self, model_path: Path) -> None:
        in_shape = tuple(int(d) for d in self._input["shape"][1:])
        if in_shape != INPUT_SHAPE:
            raise ModelError(f"model {model_path} takes inputs {in_shape}, expected {INPUT_SHAPE}")
        classes = int(self._output["shape"][-1])
        if classes != len(self.sidecar.labels):
            raise ModelError(
                f"model {model_path} has {classes} outputs but its sidecar lists "
                f"{len(self.sidecar.labels)} labels; re-export the pair"
            )

    def _new_interpreter(self, batch: int) -> Any:
        try:
            interpreter = self._interpreter_class(
                model_content=self._content, num_threads=self.threads
            )
            if batch != 1:
                index = interpreter.get_input_details()[0]["index"]
                interpreter.resize_tensor_input(index, [batch, *INPUT_SHAPE])
            interpreter.allocate_tensors()
        except (ValueError, RuntimeError) as exc:
            if batch != 1:
                raise
            raise ModelError(
                f"model file {self.path} is not a loadable TFLite model ({exc}); re-export it"
            ) from exc
        return interpreter

    def _interpreter_for(self, batch: int) -> Any:
        if batch in self._by_batch:
            self._by_batch.move_to_end(batch)
            return self._by_batch[batch]
        interpreter = self._new_interpreter(batch)
        self._by_batch[batch] = interpreter
        if len(self._by_batch) > MAX_CACHED_BATCH_SIZES:
            # Never evict batch 1: it is the fallback when a model refuses to resize.
            oldest = next(k for k in self._by_batch if k != 1)
            del self._by_batch[oldest]
        return interpreter

    def _invoke(self, interpreter: Any, x: np.ndarray) -> np.ndarray:
        interpreter.set_tensor(self._input["index"], self._input_scale.quantize(x))
        interpreter.invoke()
        return self._output_scale.dequantize(interpreter.get_tensor(self._output["index"]))

    def predict(self, batch: np.ndarray) -> np.ndarray:
        """Probabilities (N, classes) for N MNIST-style inputs (white digit on black, [0,1])."""
        x = np.asarray(batch, dtype=np.float32)
        if x.ndim == 3:
            x = x[..., np.newaxis]
        if x.ndim != 4 or tuple(x.shape[1:]) != INPUT_SHAPE:
            raise ValueError(f"expected a batch of shape (N, 28, 28, 1), got {x.shape}")
        if len(x) == 0:
            return np.zeros((0, len(self.sidecar.labels)), dtype=np.float32)
        if self.first_look is None:
            self._count_answers(0, len(x))
            return self._run(x)
        probs = self.first_look._run(x)  # checked above; its own answer counts go unread
        unsure = probs.max(axis=1) < self.sidecar.first_look.accept_at
        passed_on = int(np.count_nonzero(unsure))
        if passed_on:
            probs[unsure] = self._run(x[unsure])
        self._count_answers(len(x) - passed_on, passed_on)
        return probs

    def _count_answers(self, by_first_look: int, by_model: int) -> None:
        with self._answered_lock:
            self._answered["first_look"] += by_first_look
            self._answered["model"] += by_model

    def digits_answered(self) -> dict[str, int]:
        """How many digits the first look answered alone and how many this model answered."""
        with self._answered_lock:
            return dict(self._answered)

    def _run(self, x: np.ndarray) -> np.ndarray:
        """This model's probabilities for a checked, non-empty batch."""
        n = len(x)
        with self._lock:
            if self._resizable and n > 1:
                try:
                    out = self._invoke(self._interpreter_for(n), x)
                except (ValueError, RuntimeError) as exc:
                    log.warning("model cannot run batches (%s); running digits one by one", exc)
                    self._resizable = False
                    self._by_batch = OrderedDict([(1, self._interpreter_for(1))])
                else:
                    return to_probabilities(out, self.temperature)
            single = self._interpreter_for(1)
            if n == 1:
                out = self._invoke(single, x)
            else:
                out = np.concatenate([self._invoke(single, x[i : i + 1]) for i in range(n)])
        return to_probabilities(out, self.temperature)
