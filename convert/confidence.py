"""Confidence that means something: logits out of the model, a temperature, an uncertain flag.

An int8 softmax saturates (0.996 is its ceiling, and most digits reach it), so the exported
model ends in logits and the device takes the softmax on the host. The temperature is fitted
on validation digits (MNIST's held-out digits and the same digits as the device would cut them
out of pictures) by minimising their negative log-likelihood: a model that says 0.9 is then
right about 90% of the time on them. The uncertain threshold is chosen on the same digits: the
least confident UNCERTAIN_SHARE of them are flagged. Neither ever sees the test set or the
development scans and photos.
"""

from __future__ import annotations

import keras
import numpy as np

from device.runtime import to_probabilities

# The share of validation readings flagged uncertain: what the threshold is chosen to flag.
UNCERTAIN_SHARE = 0.03
TEMPERATURES = np.geomspace(0.25, 8.0, 241)


def logits_model(model: keras.Model) -> keras.Model:
    """The same network without its final softmax (the last Dense layer's weights, linear)."""
    last = model.layers[-1]
    if not isinstance(last, keras.layers.Dense):
        raise ValueError(f"the model ends in {type(last).__name__}, expected a Dense layer")
    head = keras.layers.Dense(last.units, name="logits")
    outputs = head(model.layers[-1].input)
    head.set_weights(last.get_weights())
    return keras.Model(model.inputs, outputs, name=f"{model.name}_logits")


def negative_log_likelihood(logits: np.ndarray, labels: np.ndarray, temperature: float) -> float:
    probs = to_probabilities(logits, temperature)
    return float(-np.log(np.clip(probs[np.arange(len(labels)), labels], 1e-12, 1.0)).mean())


def fit_temperature(logits: np.ndarray, labels: np.ndarray) -> float:
    """The temperature (0.25..8, log grid) that minimises the validation NLL."""
    losses = [negative_log_likelihood(logits, labels, t) for t in TEMPERATURES]
    return float(TEMPERATURES[int(np.argmin(losses))])


def expected_calibration_error(
    confidence: np.ndarray, correct: np.ndarray, bins: int = 15
) -> float:
    """Mean |accuracy − confidence| over equal-width confidence bins, weighted by their size."""
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.digitize(confidence, edges[1:-1]), 0, bins - 1)
    error = 0.0
    for b in range(bins):
        inside = which == b
        if inside.any():
            error += inside.mean() * abs(correct[inside].mean() - confidence[inside].mean())
    return float(error)


def calibrate(logits: np.ndarray, labels: np.ndarray, share: float = UNCERTAIN_SHARE) -> dict:
    """Temperature and uncertain threshold from validation logits, with what they achieve."""
    temperature = fit_temperature(logits, labels)
    before = to_probabilities(logits, 1.0)
    after = to_probabilities(logits, temperature)
    confidence, correct = after.max(axis=1), after.argmax(axis=1) == labels
    threshold = float(np.quantile(confidence, share))
    kept = confidence >= threshold
    return {
        "output": "logits",
        "temperature": round(temperature, 4),
        "uncertain_below": round(threshold, 6),
        "chosen_on": f"{len(labels)} validation digits (MNIST held-out digits and the same "
                     "digits cut out of generated pictures by the device's preprocessing)",
        "rule": f"temperature: least negative log-likelihood; uncertain_below: the "
                f"{share:.0%} least confident validation readings are flagged",
        "validation": {
            "accuracy": round(float(correct.mean()), 6),
            "accuracy_not_flagged": round(float(correct[kept].mean()), 6),
            "flagged_share": round(float(1 - kept.mean()), 6),
            "nll_before": round(negative_log_likelihood(logits, labels, 1.0), 6),
            "nll_after": round(negative_log_likelihood(logits, labels, temperature), 6),
            "ece_before": round(expected_calibration_error(before.max(axis=1),
                                                           before.argmax(axis=1) == labels), 6),
            "ece_after": round(expected_calibration_error(confidence, correct), 6),
        },
    }
