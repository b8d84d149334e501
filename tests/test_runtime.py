"""DigitModel (verified, quantized, batched, thread-safe) and DigitReader on top of it."""

from __future__ import annotations

import json
import logging
import shutil
import sys
import threading
import types
from pathlib import Path

import numpy as np
import pytest

from device.reader import DigitReader, DigitReading, _resolve_joins, _surer_without_line
from device.runtime import DigitModel, load_interpreter_class
from device.sidecar import ModelError, Sidecar
from tests.camera_like import mnist_test, paper_frame
from tests.conftest import SHIPPED_MODEL


@pytest.fixture(scope="module")
def model(digit_model_path: Path) -> DigitModel:
    return DigitModel(digit_model_path, threads=2)


@pytest.fixture(scope="module")
def digits(mnist_dir: Path) -> tuple[np.ndarray, np.ndarray]:
    images, labels = mnist_test(mnist_dir)
    return images[:300, ..., None].astype(np.float32) / 255.0, labels[:300]


@pytest.fixture
def model_copy(tmp_path: Path, digit_model_path: Path) -> Path:
    target = tmp_path / "m.tflite"
    shutil.copy(digit_model_path, target)
    shutil.copy(digit_model_path.with_suffix(".json"), target.with_suffix(".json"))
    return target


def test_reads_mnist_through_litert(model: DigitModel, digits) -> None:
    x, y = digits
    probs = model.predict(x)
    assert model.runtime == "ai_edge_litert"
    assert probs.shape == (300, 10) and probs.dtype == np.float32
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-5)
    assert (probs.argmax(axis=1) == y).mean() >= 0.85


def test_batches_of_any_size_match_single_predictions(model: DigitModel, digits) -> None:
    x, _ = digits
    singles = np.concatenate([model.predict(x[i : i + 1]) for i in range(7)])
    for n in (3, 7, 1, 3):  # revisits cached sizes
        np.testing.assert_allclose(model.predict(x[:n]), singles[:n], atol=1e-6)
    assert model.predict(x[:0]).shape == (0, 10)


def test_concurrent_callers_get_their_own_answers(model: DigitModel, digits) -> None:
    x, _ = digits
    chunks = [x[i * 20 : i * 20 + 1 + i] for i in range(6)]  # different batch sizes per thread
    expected = [model.predict(c) for c in chunks]
    results: dict[int, list[np.ndarray]] = {i: [] for i in range(6)}

    def worker(i: int) -> None:
        for _ in range(15):
            results[i].append(model.predict(chunks[i]))

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for i in range(6):
        for got in results[i]:
            np.testing.assert_allclose(got, expected[i], atol=1e-6)


def test_rejects_wrong_input_shape(model: DigitModel) -> None:
    with pytest.raises(ValueError, match=r"\(N, 28, 28, 1\)"):
        model.predict(np.zeros((2, 32, 32, 1), np.float32))


def test_missing_model_says_how_to_fix(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match=r"not found.*--model"):
        DigitModel(tmp_path / "absent.tflite")


def test_missing_or_corrupt_sidecar(model_copy: Path) -> None:
    sidecar = model_copy.with_suffix(".json")
    sidecar.write_text("{not json")
    with pytest.raises(ModelError, match="not valid JSON"):
        DigitModel(model_copy)
    sidecar.unlink()
    with pytest.raises(ModelError, match=r"sidecar .* not found"):
        DigitModel(model_copy)


def test_sidecar_fields_are_validated(model_copy: Path) -> None:
    sidecar = model_copy.with_suffix(".json")
    raw = json.loads(sidecar.read_text())
    for key, bad, message in (
        ("format_version", 9, "format_version 9"),
        ("sha256", "abc", "not a sha256"),
        ("labels", "0123456789", "labels"),
    ):
        sidecar.write_text(json.dumps({**raw, key: bad}))
        with pytest.raises(ModelError, match=message):
            Sidecar.load(sidecar)


def test_model_that_does_not_match_its_sidecar_is_refused(model_copy: Path) -> None:
    data = bytearray(model_copy.read_bytes())
    data[len(data) // 2] ^= 0xFF
    model_copy.write_bytes(bytes(data))
    with pytest.raises(ModelError, match="does not match its sidecar"):
        DigitModel(model_copy)


def test_corrupt_model_with_matching_sha_is_refused(model_copy: Path) -> None:
    import hashlib

    model_copy.write_bytes(b"this is not a flatbuffer" * 10)
    sidecar = model_copy.with_suffix(".json")
    raw = json.loads(sidecar.read_text())
    raw["sha256"] = hashlib.sha256(model_copy.read_bytes()).hexdigest()
    sidecar.write_text(json.dumps(raw))
    with pytest.raises(ModelError, match="not a loadable TFLite model"):
        DigitModel(model_copy)


@pytest.fixture
def shipped_copy(tmp_path: Path) -> Path:
    """The shipped model, its first look and both sidecars, in a folder of their own."""
    for path in SHIPPED_MODEL.parent.glob("digitnet*_int8.*"):
        shutil.copy(path, tmp_path / path.name)
    return tmp_path / SHIPPED_MODEL.name


def test_the_first_look_reads_every_digit_as_the_model_alone(digits) -> None:
    x, _ = digits
    cascade, alone = DigitModel(SHIPPED_MODEL), DigitModel(SHIPPED_MODEL, first_look=False)
    assert cascade.first_look is not None and alone.first_look is None
    full_runs: list[int] = []
    run = cascade._run
    cascade._run = lambda batch: full_runs.append(len(batch)) or run(batch)
    both, reference = cascade.predict(x), alone.predict(x)
    np.testing.assert_array_equal(both.argmax(axis=1), reference.argmax(axis=1))
    # Only the digits the first look is not sure of went to the model, and those answers are
    # the model's own; the rest are the first look's, at or above its threshold.
    first = cascade.first_look.predict(x)
    unsure = first.max(axis=1) < cascade.sidecar.first_look.accept_at
    assert full_runs == [int(unsure.sum())] and 0 < unsure.sum() < len(x) // 4
    assert cascade.digits_answered() == {"first_look": len(x) - int(unsure.sum()),
                                         "model": int(unsure.sum())}
    assert alone.digits_answered() == {"first_look": 0, "model": len(x)}
    np.testing.assert_allclose(both[unsure], reference[unsure], atol=1e-6)
    np.testing.assert_allclose(both[~unsure], first[~unsure], atol=1e-6)
    uncertain_below = cascade.sidecar.uncertain_below
    assert ((both.max(axis=1) < uncertain_below) == (reference.max(axis=1) < uncertain_below)).all()


def test_a_first_look_that_is_never_sure_leaves_every_digit_to_the_model(
        shipped_copy: Path, digits) -> None:
    sidecar = shipped_copy.with_suffix(".json")
    raw = json.loads(sidecar.read_text())
    sidecar.write_text(json.dumps({**raw, "first_look": {**raw["first_look"], "accept_at": 1}}))
    x, _ = digits
    np.testing.assert_allclose(DigitModel(shipped_copy).predict(x[:40]),
                               DigitModel(SHIPPED_MODEL, first_look=False).predict(x[:40]),
                               atol=1e-6)


def test_a_missing_first_look_runs_the_model_alone(shipped_copy: Path,
                                                   caplog: pytest.LogCaptureFixture) -> None:
    (shipped_copy.parent / "digitnet_first_look_int8.tflite").unlink()
    with caplog.at_level(logging.WARNING, logger="device.runtime"):
        model = DigitModel(shipped_copy)
    assert model.first_look is None
    assert "names a first look" in caplog.text and "the same readings, slower" in caplog.text


def test_a_wrong_or_malformed_first_look_is_refused(shipped_copy: Path) -> None:
    sidecar = shipped_copy.with_suffix(".json")
    raw = json.loads(sidecar.read_text())
    sidecar.write_text(json.dumps({**raw, "first_look": {**raw["first_look"],
                                                         "sha256": "0" * 64}}))
    with pytest.raises(ModelError, match=r"is not the one .* names"):
        DigitModel(shipped_copy)
    for bad in ({"model_file": "../x.tflite"}, {"accept_at": 1.5}, {"accept_at": True},
                {"sha256": "abc"}):
        sidecar.write_text(json.dumps({**raw, "first_look": {**raw["first_look"], **bad}}))
        with pytest.raises(ModelError, match="'first_look' must name"):
            Sidecar.load(sidecar)
    sidecar.write_text(json.dumps({**raw, "first_look": "yes"}))
    with pytest.raises(ModelError, match="'first_look' must name"):
        Sidecar.load(sidecar)


def test_falls_back_to_tensorflow_lite_only_when_light_runtimes_are_missing(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    sentinel = object()
    fake_tf = types.ModuleType("tensorflow")
    fake_tf.lite = types.SimpleNamespace(Interpreter=sentinel)
    monkeypatch.setitem(sys.modules, "tensorflow", fake_tf)
    assert load_interpreter_class()[1] == "ai_edge_litert"  # TF present but not chosen
    monkeypatch.setitem(sys.modules, "ai_edge_litert.interpreter", None)
    monkeypatch.setitem(sys.modules, "tflite_runtime.interpreter", None)
    assert load_interpreter_class() == (sentinel, "tensorflow.lite")
    monkeypatch.setitem(sys.modules, "tensorflow", None)
    with pytest.raises(ModelError, match="pip install ai-edge-litert"):
        load_interpreter_class()


def test_logs_the_runtime_in_use(digit_model_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="device.runtime"):
        DigitModel(digit_model_path, threads=1)
    assert "runs on ai_edge_litert with 1 thread" in caplog.text


def test_reader_reads_a_number_left_to_right_in_one_batch(model: DigitModel, mnist_dir) -> None:
    images, labels = mnist_test(mnist_dir)
    # Clear, well-formed test digits: 1, 4 and 7 rendered on paper, read as "147".
    picks = [int(np.flatnonzero(labels == d)[0]) for d in (1, 4, 7)]
    frame = paper_frame([images[i] for i in picks], seed=3)
    calls = []
    original = model.predict
    model.predict = lambda batch: calls.append(len(batch)) or original(batch)  # type: ignore[method-assign]
    try:
        reading = DigitReader(model).read(frame)
    finally:
        del model.predict
    assert calls == [3]
    assert reading.number == "147"
    assert [d.digit for d in reading.digits] == [1, 4, 7]
    assert reading.digit in (1, 4, 7) and reading.reason is None
    assert 0 < reading.confidence <= 1 and len(reading.probabilities) == 10
    xs = [d.box[0] for d in reading.digits]
    assert xs == sorted(xs)
    assert set(reading.timings_ms) == {"preprocess", "inference"}


def test_reader_says_why_when_there_is_no_digit(model: DigitModel) -> None:
    blank = np.full((240, 320), 200, np.uint8)
    reading = DigitReader(model).read(blank)
    assert reading.digits == [] and reading.digit is None and reading.number is None
    assert reading.reason and "no ink" in reading.reason


def _reading(digit: int, confidence: float, x: int) -> DigitReading:
    return DigitReading(digit, confidence, [confidence] * 10, (x, 0, 10, 10))


def test_a_join_wins_only_when_the_model_is_surer_of_one_digit() -> None:
    pieces = [_reading(6, 0.55, 0), _reading(1, 0.98, 10), _reading(2, 0.99, 30)]
    sure_four = {0: _reading(4, 0.97, 0)}  # a 4 whose stem missed its bar
    assert [d.digit for d in _resolve_joins(pieces, sure_four)] == [4, 2]
    unsure = {0: _reading(4, 0.6, 0)}  # not sure as one digit: keep the two readings
    assert [d.digit for d in _resolve_joins(pieces, unsure)] == [6, 1, 2]
    clear_pair = [_reading(4, 0.99, 0), _reading(1, 0.99, 10)]  # "41" written clearly
    assert [d.digit for d in _resolve_joins(clear_pair, {0: _reading(4, 0.95, 0)})] == [4, 1]


def test_a_digit_is_read_without_the_line_under_it_only_when_surer_and_sure() -> None:
    with_line = _reading(2, 0.62, 0)  # a 9 whose underline joined its tail
    assert _surer_without_line(with_line, _reading(9, 0.97, 0)).digit == 9
    assert _surer_without_line(with_line, _reading(9, 0.7, 0)).digit == 2  # not sure alone
    flat_foot = _reading(2, 0.99, 0)  # a 2 without its foot reads less surely
    assert _surer_without_line(flat_foot, _reading(7, 0.95, 0)).digit == 2
