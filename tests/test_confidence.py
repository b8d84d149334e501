"""Calibrated confidence: logits out of the model, a fitted temperature, the uncertain flag."""

from __future__ import annotations

import json
from pathlib import Path

import keras
import numpy as np
import pytest

from convert.confidence import (
    calibrate,
    expected_calibration_error,
    fit_temperature,
    logits_model,
)
from device.reader import DigitReader
from device.runtime import DigitModel, to_probabilities
from device.sidecar import ModelError, Sidecar


def _logits_of_a_model_that_is_too_sure(n: int, true_temperature: float, seed: int = 0):
    """Labels drawn from softmax(z); the model reports z * true_temperature (overconfident)."""
    rng = np.random.default_rng(seed)
    z = rng.normal(0, 2.5, (n, 10)).astype(np.float32)
    z[np.arange(n), rng.integers(0, 10, n)] += 3.0
    p = to_probabilities(z, 1.0)
    labels = np.array([rng.choice(10, p=row) for row in p])
    return z * true_temperature, labels


def test_the_fitted_temperature_undoes_overconfidence() -> None:
    logits, labels = _logits_of_a_model_that_is_too_sure(6000, true_temperature=2.0)
    assert fit_temperature(logits, labels) == pytest.approx(2.0, rel=0.1)
    report = calibrate(logits, labels)
    assert report["validation"]["nll_after"] < report["validation"]["nll_before"]
    assert report["validation"]["ece_after"] < 0.5 * report["validation"]["ece_before"]


def test_the_threshold_flags_the_least_confident_share_and_they_are_the_weakest() -> None:
    logits, labels = _logits_of_a_model_that_is_too_sure(5000, true_temperature=1.5, seed=1)
    report = calibrate(logits, labels, share=0.05)
    confidence = to_probabilities(logits, report["temperature"]).max(axis=1)
    flagged = confidence < report["uncertain_below"]
    assert flagged.mean() == pytest.approx(0.05, abs=0.002)
    correct = to_probabilities(logits, 1.0).argmax(1) == labels
    assert correct[~flagged].mean() > correct[flagged].mean() + 0.2
    assert report["validation"]["accuracy_not_flagged"] > report["validation"]["accuracy"]


def test_calibration_error_is_zero_for_a_model_that_means_what_it_says() -> None:
    rng = np.random.default_rng(2)
    confidence = rng.uniform(0.1, 1.0, 200_000)
    correct = rng.random(200_000) < confidence
    assert expected_calibration_error(confidence, correct) < 0.01
    assert expected_calibration_error(np.ones(1000), np.zeros(1000, bool)) == 1.0


def test_logits_model_is_the_network_without_its_softmax() -> None:
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((28, 28, 1)), keras.layers.Flatten(),
                              keras.layers.Dense(16, activation="relu"),
                              keras.layers.Dense(10, activation="softmax")])
    x = np.random.default_rng(0).random((8, 28, 28, 1)).astype(np.float32)
    logits = logits_model(model).predict(x, verbose=0)
    np.testing.assert_allclose(to_probabilities(logits, 1.0), model.predict(x, verbose=0),
                               atol=1e-5)


def test_host_softmax_with_temperature_and_older_softmax_outputs() -> None:
    logits = np.array([[4.0, 2.0, 0.0]], np.float32)
    hot, cool = to_probabilities(logits, 1.0), to_probabilities(logits, 2.0)
    assert hot.max() > cool.max() and hot.argmax() == cool.argmax()
    np.testing.assert_allclose(cool.sum(), 1.0, rtol=1e-6)
    # A model that ends in an int8 softmax: rows near 1 are renormalised, not softmaxed again.
    saturated = np.array([[0.996, 0.0, 0.0]], np.float32)
    assert to_probabilities(saturated).max() == pytest.approx(1.0)


def test_sidecar_confidence_block_drives_the_reader(digit_model_path: Path,
                                                    tmp_path: Path) -> None:
    model_path = tmp_path / digit_model_path.name
    model_path.write_bytes(digit_model_path.read_bytes())
    raw = json.loads(digit_model_path.with_suffix(".json").read_text())
    raw["confidence"] = {"output": "logits", "temperature": 1.7, "uncertain_below": 0.999}
    model_path.with_suffix(".json").write_text(json.dumps(raw))
    reader = DigitReader(DigitModel(model_path))
    assert reader.model.temperature == 1.7 and reader.uncertain_below == 0.999
    frame = np.full((240, 320), 215, np.uint8)
    frame[60:180, 150:162] = 30  # a plain 1, read with a confidence short of 0.999
    reading = reader.read(frame)
    assert reading.digits and reading.uncertain is True
    assert all(d.uncertain == (d.confidence < 0.999) for d in reading.digits)
    # the temperature is applied: the same frame at T = 1 reads the same digit, surer
    raw["confidence"]["temperature"] = 1.0
    model_path.with_suffix(".json").write_text(json.dumps(raw))
    at_one = DigitReader(DigitModel(model_path)).read(frame)
    assert at_one.digit == reading.digit and at_one.confidence > reading.confidence
    for bad in ({"temperature": -1}, {"uncertain_below": "high"}, {"temperature": True}, None,
                [1], "x"):
        model_path.with_suffix(".json").write_text(json.dumps({**raw, "confidence": bad}))
        with pytest.raises(ModelError, match="'confidence'"):
            Sidecar.load(model_path.with_suffix(".json"))
