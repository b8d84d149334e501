"""Shared fixtures. MNIST comes from $MNIST_DATA_DIR (the Makefile points it at ../shared)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from service_helpers import camera_scene_dir, served  # noqa: F401  (HTTP service fixtures)

REPO = Path(__file__).resolve().parent.parent
SHARED_DATA = REPO.parent / "shared" / "data"


@pytest.fixture(scope="session")
def mnist_dir() -> Path:
    path = Path(os.environ.get("MNIST_DATA_DIR", SHARED_DATA / "mnist"))
    if not path.is_dir():
        pytest.fail(f"MNIST not found at {path}; set MNIST_DATA_DIR (make test does)")
    return path


@pytest.fixture(scope="session")
def handwriting_dir() -> Path:
    path = SHARED_DATA / "handwriting_dev"
    if not path.is_dir():
        pytest.fail(f"handwriting_dev not found at {path}")
    return path


SHIPPED_MODEL = REPO / "models" / "digitnet_int8.tflite"


@pytest.fixture(scope="session")
def digit_model_path(tmp_path_factory: pytest.TempPathFactory, mnist_dir: Path) -> Path:
    """The shipped int8 model; until it exists, a small int8 CNN trained here (~20 s)."""
    if SHIPPED_MODEL.is_file():
        return SHIPPED_MODEL
    return _tiny_int8_model(tmp_path_factory.mktemp("tiny_model"), mnist_dir)


def _tiny_int8_model(out: Path, mnist_dir: Path) -> Path:
    import hashlib
    import json

    import keras
    import numpy as np
    import tensorflow as tf

    from train.data import read_idx_images, read_idx_labels

    x = read_idx_images(mnist_dir / "train-images-idx3-ubyte.gz")[:12000, ..., None] / 255.0
    y = read_idx_labels(mnist_dir / "train-labels-idx1-ubyte.gz")[:12000]
    keras.utils.set_random_seed(0)
    model = keras.Sequential([
        keras.Input((28, 28, 1)),
        keras.layers.Conv2D(16, 3, activation="relu"),
        keras.layers.MaxPooling2D(),
        keras.layers.Conv2D(32, 3, activation="relu"),
        keras.layers.MaxPooling2D(),
        keras.layers.Flatten(),
        keras.layers.Dense(10, activation="softmax"),
    ])
    model.compile("adam", "sparse_categorical_crossentropy")
    model.fit(x, y, epochs=2, batch_size=128, verbose=0)
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    samples = x[:200].astype(np.float32)
    converter.representative_dataset = lambda: ([s[None]] for s in samples)
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.inference_input_type = converter.inference_output_type = tf.int8
    path = out / "tiny_int8.tflite"
    path.write_bytes(converter.convert())
    sidecar = {
        "format_version": 1,
        "model_file": path.name,
        "sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
        "labels": [str(i) for i in range(10)],
        "preprocessing": {"polarity": "light_on_dark", "value_range": [0, 1], "canvas": 28,
                          "digit_box": 20, "centering": "center_of_mass"},
    }
    path.with_suffix(".json").write_text(json.dumps(sidecar))
    return path
