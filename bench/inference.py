"""Microseconds per digit, one digit per call: the product's int8 LiteRT against the Keras ways.

    python -m bench.inference --threads 1 [--pause-ms 50] [--tflite-model M] [--keras-model K]
                              [--against OTHER.tflite] [--json OUT]

Engines, each fed the same MNIST test digits one at a time (what a service does per request):
- ``int8 LiteRT``: the product's `DigitModel.predict` (quantize, invoke, dequantize).
- ``int8 LiteRT, OTHER``: with ``--against``, another model file on the same path (e.g. the one
  shipped before), timed in alternating rounds with the first so that both see the same load.
- ``float32 TFLite``: the Keras model converted without quantization, on the same interpreter.
- ``Keras model.predict``: what the notebooks call.
- ``Keras predict_on_batch`` and ``Keras tf.function``: the Keras model without predict's
  per-call data pipeline; tf.function(jit_compile=False) around model(x, training=False).
Thread count applies to both runtimes (LiteRT num_threads; TensorFlow intra/inter-op threads), so
each thread count needs its own process: TensorFlow fixes its pools at first use. The Keras rows
need TensorFlow; without it (a Pi) they are skipped and the LiteRT rows still run.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.images import default_mnist_dir, mnist_test_images  # noqa: E402
from device.runtime import DigitModel, load_interpreter_class  # noqa: E402
from device.sidecar import ModelError  # noqa: E402
from train.arguments import positive_int  # noqa: E402

WARMUP_CALLS = 20
DEFAULT_CALLS = {"fast": 2000, "predict": 200}


def time_calls(call: Callable[[np.ndarray], object], digits: np.ndarray, calls: int,
               pause_s: float = 0.0) -> dict:
    """Median and p99 wall time of `call` on one digit at a time, in µs; with `pause_s`, each
    call comes after that long idle (a lone upload, a camera's next frame), untimed."""
    for i in range(WARMUP_CALLS):
        call(digits[i % len(digits) : i % len(digits) + 1])
    samples = np.empty(calls)
    for i in range(calls):
        x = digits[i % len(digits) : i % len(digits) + 1]
        if pause_s:
            time.sleep(pause_s)
        started = time.perf_counter()
        call(x)
        samples[i] = time.perf_counter() - started
    return {
        "calls": calls,
        "median_us": round(float(np.median(samples)) * 1e6, 1),
        "p99_us": round(float(np.percentile(samples, 99)) * 1e6, 1),
    }


def time_alternating(first: Callable[[np.ndarray], object],
                     second: Callable[[np.ndarray], object], digits: np.ndarray, calls: int,
                     *, pause_s: float = 0.0, rounds: int = 10) -> tuple[dict, dict]:
    """`time_calls` for two engines in alternating rounds: a load that comes and goes lands on
    both alike. Each result's median and p99 are the medians over its rounds; the first's
    ``vs_second`` is the ratio of the two medians."""
    per_round = max(1, calls // rounds)
    results: tuple[list[dict], list[dict]] = ([], [])
    for _ in range(rounds):
        for call, found in zip((first, second), results, strict=True):
            found.append(time_calls(call, digits, per_round, pause_s))
    ours, theirs = ({"calls": per_round * rounds,
                     "median_us": round(float(np.median([r["median_us"] for r in found])), 1),
                     "p99_us": round(float(np.median([r["p99_us"] for r in found])), 1)}
                    for found in results)
    ours["vs_second"] = round(ours["median_us"] / max(theirs["median_us"], 1e-9), 2)
    return ours, theirs


def float_tflite_runner(path: Path, threads: int) -> Callable[[np.ndarray], np.ndarray]:
    interpreter_class, _ = load_interpreter_class()
    interpreter = interpreter_class(model_path=str(path), num_threads=threads)
    interpreter.allocate_tensors()
    input_index = interpreter.get_input_details()[0]["index"]
    output_index = interpreter.get_output_details()[0]["index"]

    def run(x: np.ndarray) -> np.ndarray:
        interpreter.set_tensor(input_index, x)
        interpreter.invoke()
        return interpreter.get_tensor(output_index)

    return run


def keras_runners(keras_model: Path, threads: int,
                  float_tflite: Path) -> dict[str, Callable[[np.ndarray], object]]:
    """The Keras engines (and the float32 .tflite, converted once if missing)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(threads)
    tf.config.threading.set_inter_op_parallelism_threads(threads)
    model = keras.models.load_model(keras_model)
    if not float_tflite.is_file():
        from convert.tflite import convert

        float_tflite.parent.mkdir(parents=True, exist_ok=True)
        float_tflite.write_bytes(convert(model, "float32"))
    compiled = tf.function(lambda x: model(x, training=False), jit_compile=False)
    return {
        "float32 TFLite": float_tflite_runner(float_tflite, threads),
        "Keras model.predict": lambda x: model.predict(x, verbose=0),
        "Keras predict_on_batch": model.predict_on_batch,
        "Keras tf.function": lambda x: compiled(x).numpy(),
    }


def run(args: argparse.Namespace) -> dict:
    threads, keras_model = args.threads, args.keras_model
    digits = (mnist_test_images(args.mnist_dir)[:1000].astype(np.float32) / 255.0)
    digits = digits[..., np.newaxis]
    product = DigitModel(args.tflite_model, threads=threads)
    pause_s = args.pause_ms / 1000.0
    if args.against:
        other = DigitModel(args.against, threads=threads)
        ours, theirs = time_alternating(product.predict, other.predict, digits, args.calls,
                                        pause_s=pause_s)
        rows = [{"engine": "int8 LiteRT", "runtime": product.runtime, **ours},
                {"engine": f"int8 LiteRT, {args.against.name}", "runtime": other.runtime,
                 **theirs, "against": str(args.against)}]
    else:
        rows = [{"engine": "int8 LiteRT", "runtime": product.runtime,
                 **time_calls(product.predict, digits, args.calls, pause_s)}]
    skipped = None
    if keras_model is None:
        skipped = "no Keras model given"
    else:
        try:
            runners = keras_runners(keras_model, threads, args.float_tflite)
        except ImportError as exc:
            skipped = f"TensorFlow not installed ({exc})"
        else:
            for engine, runner in runners.items():
                calls = args.predict_calls if engine == "Keras model.predict" else args.calls
                rows.append({"engine": engine, **time_calls(runner, digits, calls, pause_s)})
    return {"threads": threads, "pause_ms": args.pause_ms, "rows": rows, "skipped": skipped,
            "tflite_model": str(args.tflite_model), "keras_model": str(keras_model)}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=positive_int, default=1)
    parser.add_argument("--tflite-model", type=Path,
                        default=REPO / "models" / "digitnet_int8.tflite")
    parser.add_argument("--keras-model", type=Path, help="the float Keras model (needs TF)")
    parser.add_argument("--float-tflite", type=Path, default=REPO / "bench" / "out" /
                        "digitnet_float32.tflite", help="converted from --keras-model if absent")
    parser.add_argument("--mnist-dir", type=Path, default=default_mnist_dir())
    parser.add_argument("--calls", type=positive_int, default=DEFAULT_CALLS["fast"])
    parser.add_argument("--predict-calls", type=positive_int, default=DEFAULT_CALLS["predict"])
    parser.add_argument("--pause-ms", type=float, default=0.0,
                        help="idle this long before each timed call (default: back to back); "
                        "e.g. 50, a camera at 20 fps: shows what waking the interpreter's "
                        "threads costs")
    parser.add_argument("--against", type=Path, metavar="OTHER.tflite",
                        help="also time this model (its sidecar beside it) in alternating "
                        "rounds with --tflite-model: time per digit as a ratio, same load")
    parser.add_argument("--json", type=Path, help="also write the result here")
    args = parser.parse_args(argv)
    try:
        result = run(args)
    except ModelError as error:  # a missing or damaged model: one line, as argparse's own
        parser.error(str(error))
    text = json.dumps(result, indent=2)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
