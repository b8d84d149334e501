"""The model in models/ is what a Pi owner gets: prove its figures with the Pi's own runtime."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

from device.runtime import DigitModel
from tests.conftest import REPO
from train.data import read_idx_images, read_idx_labels

MODEL = REPO / "models" / "digitnet_int8.tflite"
SIDECAR = MODEL.with_suffix(".json")
CARD = REPO / "models" / "MODEL_CARD.md"
# The product's target, which the shipped model must meet on all 10,000 test digits.
MIN_ACCURACY = 0.996


@pytest.fixture(scope="module")
def sidecar() -> dict:
    return json.loads(SIDECAR.read_text())


@pytest.fixture(scope="module")
def test_set(mnist_dir: Path) -> tuple[np.ndarray, np.ndarray]:
    images = read_idx_images(mnist_dir / "t10k-images-idx3-ubyte.gz", expected_count=10_000)
    labels = read_idx_labels(mnist_dir / "t10k-labels-idx1-ubyte.gz", expected_count=10_000)
    return (images.astype(np.float32) / 255.0)[..., np.newaxis], labels


def test_sidecar_matches_the_file(sidecar: dict) -> None:
    assert hashlib.sha256(MODEL.read_bytes()).hexdigest() == sidecar["sha256"]
    # The robust-reading issue's budget for the int8 file (the shipped ensemble: 189,576 bytes).
    assert sidecar["bytes"] == MODEL.stat().st_size <= 200_000
    assert sidecar["quantization"] == "int8"
    assert sidecar["input"]["dtype"] == sidecar["output"]["dtype"] == "int8"
    assert sidecar["labels"] == [str(d) for d in range(10)]
    assert sidecar["preprocessing"]["digit_box"] == 20
    # Calibrated: the model ends in logits, the device applies the fitted temperature.
    confidence = sidecar["confidence"]
    assert confidence["output"] == "logits" and confidence["temperature"] > 0
    assert 0 < confidence["uncertain_below"] < 1


def test_readme_states_the_shipped_calibration(sidecar: dict) -> None:
    """The README's temperature and threshold are the shipped sidecar's, not an older model's."""
    confidence = sidecar["confidence"]
    stated = (f"T = {confidence['temperature']:.3f} and {confidence['uncertain_below']:.3f}: "
              f"{confidence['validation']['accuracy_not_flagged']:.2%} right among the validation "
              "readings not flagged")
    assert stated in " ".join((REPO / "README.md").read_text().split())


def test_all_10000_test_digits_with_litert(sidecar: dict, test_set) -> None:
    x, y = test_set
    model = DigitModel(MODEL, threads=2)
    assert model.runtime == "ai_edge_litert"
    predictions = np.concatenate([model.predict(x[i : i + 500]).argmax(1)
                                  for i in range(0, len(x), 500)])
    accuracy = float((predictions == y).mean())
    assert accuracy >= MIN_ACCURACY
    assert accuracy == pytest.approx(sidecar["metrics"]["tflite_test_accuracy"], abs=1e-9)
    # int8 may lose at most 0.05 percentage points against the float model it came from.
    assert sidecar["metrics"]["float_test_accuracy"] - accuracy <= 0.0005 + 1e-9


def test_model_card_states_the_measured_accuracy(sidecar: dict) -> None:
    text = CARD.read_text()
    assert f"{sidecar['metrics']['tflite_test_accuracy']:.2%}" in text
    assert sidecar["sha256"] in text


def test_the_first_look_reads_all_10000_test_digits_as_the_model_alone(sidecar: dict,
                                                                        test_set) -> None:
    """The shipped first look settles most digits alone and changes no reading of the test set:
    not the digit, not the uncertain flag (its threshold was chosen on validation digits)."""
    look = sidecar["first_look"]
    first_path = MODEL.with_name(look["model_file"])
    assert hashlib.sha256(first_path.read_bytes()).hexdigest() == look["sha256"]
    # The threshold is the rule's: the lowest candidate tried that changed no validation reading.
    tried = look["validation_by_accept_at"]
    assert tried[str(look["accept_at"])]["changed"] == 0
    assert all(v["changed"] > 0 for at, v in tried.items() if float(at) < look["accept_at"])
    x, _ = test_set
    cascade, alone = DigitModel(MODEL, threads=2), DigitModel(MODEL, threads=2, first_look=False)
    both = np.concatenate([cascade.predict(x[i : i + 500]) for i in range(0, len(x), 500)])
    reference = np.concatenate([alone.predict(x[i : i + 500]) for i in range(0, len(x), 500)])
    np.testing.assert_array_equal(both.argmax(1), reference.argmax(1))
    flag = sidecar["confidence"]["uncertain_below"]
    np.testing.assert_array_equal(both.max(1) < flag, reference.max(1) < flag)
    settled = float((cascade.first_look.predict(x).max(1) >= look["accept_at"]).mean())
    assert settled == pytest.approx(look["test_settled_share"], abs=1e-6) and settled > 0.8
    assert look["bytes"] == first_path.stat().st_size
