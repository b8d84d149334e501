"""A first look: the ensemble's small member reads each digit alone, and the whole model is run
only for the digits it is not sure of.

The shipped model averages two networks' logits; the small one (`digitnet-mini`) costs about a
fifth of the pair. When it alone is very sure of a digit, the pair reads that digit the same way
(the small network is half of the pair's vote), so running the pair is wasted work: a cascade,
the classic early exit (Viola and Jones, 2001; Teerapittayanon et al., 2016). The threshold
above which the first look's answer is final is chosen on the validation digits by a rule fixed
here: the lowest of ACCEPT_AT at which it changes no validation reading, neither the digit nor
its uncertain flag. The test digits are only measured.

The member is cut out of the joined model, whose one Dense head holds both members' kernels but
only the mean of their biases: its own ten biases are fitted again on the training digits (its
body and kernel frozen), so nothing is fitted on the digits that choose the threshold.
"""

from __future__ import annotations

from pathlib import Path

import keras
import numpy as np

from convert import sidecar
from convert.evaluate import TFLiteClassifier
from convert.pipeline import (
    CALIBRATION_SIZES,
    confidence_digits,
    convert_network,
    held_out_split,
    load_keras,
    source_metrics,
)
from convert.tflite import ConversionError
from device.runtime import to_probabilities
from train.data import Mnist, Split
from train.recipe import Recipe

# Candidate thresholds, lowest first: each must also lie above the full model's uncertain
# threshold, so a digit the first look settles is never one the full model would flag for that.
ACCEPT_AT = (0.95, 0.98, 0.99, 0.995, 0.998, 0.999, 0.9995, 0.9999)
BIAS_FIT_DIGITS = 20_000
BIAS_FIT_STEPS = 2_000


def member_network(joined: keras.Model, role: str, train: Split, seed: int) -> keras.Model:
    """Member ``role`` ("first" or "second") of a `train.ensemble` model, ending in its own
    logits: its body, its half of the joined head's kernel, biases fitted on training digits."""
    try:
        body, head = joined.get_layer(role), joined.get_layer("mean_of_logits")
    except ValueError as exc:
        raise ConversionError(f"{joined.name} is not a model joined by `python -m train "
                              f"ensemble` (no '{role}' member or 'mean_of_logits' head)") from exc
    kernel, _ = head.get_weights()
    width = joined.get_layer("first").output.shape[-1]
    kernel = 2 * (kernel[:width] if role == "first" else kernel[width:])
    rng = np.random.default_rng(seed)
    pick = rng.choice(len(train), size=min(BIAS_FIT_DIGITS, len(train)), replace=False)
    partial = body.predict(train.x[pick], batch_size=1024, verbose=0) @ kernel
    bias = fit_bias(partial, train.y[pick])
    inputs = keras.Input(joined.inputs[0].shape[1:])
    logits = keras.layers.Dense(kernel.shape[1], name="logits")
    model = keras.Model(inputs, logits(body(inputs)), name=f"{joined.name}_{role}")
    logits.set_weights([kernel, bias])
    return model


def fit_bias(partial_logits: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """The biases minimising cross-entropy of softmax(partial_logits + b): a convex problem in
    ten numbers, solved by plain gradient descent (the gradient is mean(p) − label shares)."""
    shares = np.bincount(labels, minlength=partial_logits.shape[1]) / len(labels)
    bias = np.zeros(partial_logits.shape[1], dtype=np.float32)
    for _ in range(BIAS_FIT_STEPS):
        bias -= 2.0 * (to_probabilities(partial_logits + bias, 1.0).mean(axis=0) - shares)
    return bias.astype(np.float32)


def choose_accept_at(first: np.ndarray, full: np.ndarray, full_uncertain_below: float) -> dict:
    """The lowest threshold of ACCEPT_AT at which the first look changes no reading of these
    validation digits: ``first`` and ``full`` are each model's calibrated probabilities."""
    first_digit, first_conf = first.argmax(axis=1), first.max(axis=1)
    full_digit, full_conf = full.argmax(axis=1), full.max(axis=1)
    tried = {}
    for accept_at in ACCEPT_AT:
        if accept_at <= full_uncertain_below:
            continue
        settled = first_conf >= accept_at
        changed = settled & ((first_digit != full_digit) | (full_conf < full_uncertain_below))
        tried[str(accept_at)] = {"settled_share": round(float(settled.mean()), 6),
                                 "changed": int(changed.sum())}
        if not changed.any():
            return {"accept_at": accept_at, "tried": tried}
    raise ConversionError("the first look changes some validation reading at every threshold "
                          f"({', '.join(map(str, ACCEPT_AT))}); ship the model without one")


def calibrated_model_of(sidecar_path: Path, card: dict) -> Path:
    """The converted model ``card`` describes, beside it; ConversionError unless the card names
    one that is there, its precision and its calibrated confidence. Checked before the member's
    minutes of conversion, whose end (the threshold) needs all three."""
    model_file, confidence = card.get("model_file"), card.get("confidence") or {}
    if not (isinstance(model_file, str) and model_file
            and Path(sidecar_path).with_name(model_file).is_file()
            and isinstance(card.get("quantization"), str)
            and confidence.get("temperature") and confidence.get("uncertain_below")):
        raise ConversionError(
            f"sidecar {sidecar_path} does not describe a calibrated model beside it (it needs "
            "'model_file' naming the .tflite there, 'quantization' and 'confidence'); convert "
            "the joined model again with python -m convert JOINED.keras")
    return Path(sidecar_path).with_name(model_file)


def add_first_look(joined_path: Path, sidecar_path: Path, mnist: Mnist, *, role: str = "second",
                   calibration_sizes: tuple[int, ...] = CALIBRATION_SIZES) -> tuple[Path, dict]:
    """Write the member as its own verified .tflite and sidecar beside ``sidecar_path`` (the
    joined model's, converted from ``joined_path``) and record it there as its first look."""
    card = sidecar.read(sidecar_path)
    full_path = calibrated_model_of(sidecar_path, card)
    trained = source_metrics(joined_path)
    seed = trained.get("seed", Recipe().seed)
    train, val = held_out_split(mnist, trained)
    network = member_network(load_keras(joined_path), role, train, seed)
    stem = full_path.stem.removesuffix(f"_{card['quantization']}")
    path, member_card = convert_network(
        network, trained, full_path.parent, card["quantization"], mnist,
        name=f"{stem}_first_look", arch=f"{role} member of {trained.get('arch', 'the model')}",
        source_model=str(joined_path), calibration_sizes=calibration_sizes)

    digits = confidence_digits(val, seed)
    first = calibrated_probabilities(path, member_card, digits.x)
    full = calibrated_probabilities(full_path, card, digits.x)
    chosen = choose_accept_at(first, full, card["confidence"]["uncertain_below"])
    on_test = calibrated_probabilities(path, member_card, mnist.test.x)
    settled_test = round(float((on_test.max(axis=1) >= chosen["accept_at"]).mean()), 6)
    card["first_look"] = {
        "model_file": path.name,
        "sha256": member_card["sha256"],
        "bytes": member_card["bytes"],
        "accept_at": chosen["accept_at"],
        "chosen_on": f"{len(digits.y)} validation digits, the ones the confidence was "
                     "calibrated on",
        "rule": "the lowest candidate above uncertain_below at which no validation reading "
                "changes (digit or uncertain flag) against this model alone",
        "validation_by_accept_at": chosen["tried"],
        "test_settled_share": settled_test,  # measured, not chosen on
    }
    sidecar.write(full_path, card)
    return path, card


def calibrated_probabilities(path: Path, card: dict, x: np.ndarray) -> np.ndarray:
    """A converted model's probabilities for ``x`` at the temperature its sidecar records."""
    return to_probabilities(TFLiteClassifier(path).outputs_all(x),
                            card["confidence"]["temperature"])
