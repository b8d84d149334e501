"""Keras model → .tflite + sidecar, evaluated with LiteRT against the float model."""

from __future__ import annotations

from pathlib import Path

import keras

from convert import sidecar
from convert.confidence import calibrate, logits_model
from convert.evaluate import TFLiteClassifier, evaluate_tflite
from convert.tflite import ConversionError, convert, representative_data
from train.data import Mnist, Split
from train.device_inputs import with_device_inputs
from train.errors import ModelFileError
from train.recipe import Recipe
from train.run import load_saved, training_phases
from train.split import recorded_split, run_metrics, training_split

# Post-training int8 may cost at most this much accuracy against the float model.
MAX_INT8_DROP_PP = 0.05
# How many training digits calibrate the int8 ranges is a choice like any hyper-parameter, so it
# is made on the validation digits: each size is tried, and the int8 model that reads them best
# wins (on a tie, the larger sample, whose ranges are steadier). The test set plays no part.
CALIBRATION_SIZES = (100, 500, 1000, 2000, 5000)


def load_keras(path: Path) -> keras.Model:
    try:
        return load_saved(path)
    except ModelFileError as exc:
        raise ConversionError(str(exc)) from exc


def source_metrics(model_path: Path) -> dict:
    """The training run's metrics.json beside the model, with every phase behind it."""
    metrics = run_metrics(model_path)
    keep = ("arch", "params", "val_accuracy", "test_accuracy", "seed", "val_split", "limit",
            "data_checksum", "versions")
    found = {k: metrics[k] for k in keep if k in metrics}
    if metrics:
        phases = training_phases(model_path)
        found["phases"] = phases
        found["train_seconds"] = round(sum(p.get("train_seconds") or 0 for p in phases), 1)
        found["epochs_run"] = sum(p.get("epochs_run") or 0 for p in phases)
    return found


def held_out_split(mnist: Mnist, trained: dict) -> tuple[Split, Split]:
    """The training run's own training and validation digits, from what its metrics.json
    recorded (the training defaults for a model from elsewhere)."""
    return training_split(mnist, *recorded_split(trained))


def calibrate_int8(model: keras.Model, train: Split, val: Split,
                   sizes: tuple[int, ...] = CALIBRATION_SIZES) -> tuple[bytes, dict]:
    """The int8 flatbuffer whose calibration sample size reads the validation digits best."""
    tried: list[tuple[float, int, bytes]] = []
    for size in sorted({min(size, len(train)) for size in sizes}):
        flatbuffer = convert(model, "int8", representative_data(train.x, count=size))
        probs = TFLiteClassifier(flatbuffer).predict_all(val.x)
        tried.append((float((probs.argmax(1) == val.y).mean()), size, flatbuffer))
    accuracy, size, flatbuffer = max(tried, key=lambda t: (t[0], t[1]))
    return flatbuffer, {
        "samples": size,
        "drawn_from": "the training digits (validation held out), seeded",
        "val_accuracy": round(accuracy, 6),
        "val_accuracy_by_samples": {str(s): round(a, 6) for a, s, _ in tried},
    }


def confidence_digits(val: Split, seed: int) -> Split:
    """The digits confidence is calibrated on: the run's validation digits plus as many of them
    again as the device would cut them out of pictures."""
    return with_device_inputs(val, len(val), seed + 1)


def calibrate_confidence(flatbuffer: bytes, val: Split, seed: int) -> dict:
    """Temperature and uncertain threshold for the converted model, on `confidence_digits`."""
    digits = confidence_digits(val, seed)
    logits = TFLiteClassifier(flatbuffer).outputs_all(digits.x)
    return calibrate(logits, digits.y)


def convert_and_verify(model_path: Path, out_dir: Path, quant: str, mnist: Mnist,
                       name: str | None = None, *,
                       calibration_sizes: tuple[int, ...] = CALIBRATION_SIZES,
                       ) -> tuple[Path, dict]:
    """Convert, write, evaluate on all 10,000 test digits and write the sidecar."""
    model = load_keras(model_path)
    trained = source_metrics(model_path)
    # The device takes the softmax itself, calibrated (convert.confidence).
    return convert_network(logits_model(model), trained, out_dir, quant, mnist,
                           name=name, arch=trained.get("arch", model.name),
                           source_model=str(model_path), calibration_sizes=calibration_sizes)


def convert_network(network: keras.Model, trained: dict, out_dir: Path, quant: str,
                    mnist: Mnist, *, name: str | None, arch: str, source_model: str,
                    calibration_sizes: tuple[int, ...] = CALIBRATION_SIZES,
                    ) -> tuple[Path, dict]:
    """A network ending in logits → ``out_dir``/<name>_<quant>.tflite and its sidecar, with
    int8 ranges and confidence chosen on the validation digits of the run ``trained`` records
    and every figure measured on the 10,000 test digits."""
    calibration = None
    train, val = held_out_split(mnist, trained)
    if quant == "int8":
        flatbuffer, calibration = calibrate_int8(network, train, val, calibration_sizes)
    else:
        flatbuffer = convert(network, quant)
    confidence = calibrate_confidence(flatbuffer, val, trained.get("seed", Recipe().seed))

    out_dir.mkdir(parents=True, exist_ok=True)
    tflite_path = out_dir / f"{name or arch.replace('-', '_')}_{quant}.tflite"

    keras_logits = network.predict(mnist.test.x, batch_size=1024, verbose=0)
    float_accuracy = float((keras_logits.argmax(1) == mnist.test.y).mean())
    evaluation = evaluate_tflite(flatbuffer, mnist.test.x, mnist.test.y, keras_logits)
    drop_pp = (float_accuracy - evaluation["test_accuracy"]) * 100
    metrics = {
        "tflite_test_accuracy": evaluation["test_accuracy"],
        "float_test_accuracy": round(float_accuracy, 6),
        "drop_pp": round(drop_pp, 4),
        "test_errors": evaluation["errors"],
        "agreement_with_keras": evaluation["agreement_with_keras"],
        "median_us_per_digit": evaluation["median_us_per_digit"],
        "per_class": evaluation["per_class"],
        "confusion_matrix": evaluation["confusion_matrix"],
        "test_set": "MNIST t10k (10,000 digits)",
        "data_checksum": mnist.checksum,
        "training": trained,
    }
    if calibration:
        metrics["calibration"] = calibration
    versions = trained.get("versions", {})
    versions = {f"{k}_version": v for k, v in versions.items()}
    card = sidecar.build(flatbuffer, tflite_path.name, quant=quant, arch=arch, metrics=metrics,
                         versions=versions, source_model=source_model)
    card["confidence"] = confidence
    # Only now, measured and described, does the model replace the one in out_dir.
    sidecar.publish(flatbuffer, tflite_path, card)
    return tflite_path, card


def summary_line(card: dict) -> str:
    m = card["metrics"]
    return (f"{card['model_file']}: {card['bytes']:,} bytes, LiteRT test accuracy "
            f"{m['tflite_test_accuracy']:.4%} (float {m['float_test_accuracy']:.4%}, "
            f"drop {m['drop_pp']:+.3f} pp, agreement {m['agreement_with_keras']:.4%}), "
            f"{m['median_us_per_digit']:.0f} µs/digit, input {card['input']['dtype']}, "
            f"output {card['output']['dtype']}")

