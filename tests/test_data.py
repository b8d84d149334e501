"""MNIST loading: the real files, and the clear errors a user gets for broken ones."""

from __future__ import annotations

import gzip
import shutil
from pathlib import Path

import numpy as np
import pytest

from train.data import DataError, load_mnist, read_idx_images, read_idx_labels, split_validation

TRAIN_HISTOGRAM = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]


@pytest.fixture(scope="module")
def mnist(mnist_dir: Path):
    return load_mnist(mnist_dir, download=False)


def test_real_files_load_normalised(mnist) -> None:
    assert mnist.train.x.shape == (60_000, 28, 28, 1)
    assert mnist.test.x.shape == (10_000, 28, 28, 1)
    assert mnist.train.x.dtype == np.float32
    assert mnist.train.x.min() == 0.0 and mnist.train.x.max() == 1.0
    assert np.bincount(mnist.train.y).tolist() == TRAIN_HISTOGRAM
    assert len(mnist.checksum) == 64


def test_npz_gives_the_same_data(mnist, tmp_path: Path) -> None:
    raw = (mnist.train.x[..., 0] * 255).round().astype(np.uint8)
    raw_test = (mnist.test.x[..., 0] * 255).round().astype(np.uint8)
    np.savez(tmp_path / "mnist.npz", x_train=raw, y_train=mnist.train.y.astype(np.uint8),
             x_test=raw_test, y_test=mnist.test.y.astype(np.uint8))
    again = load_mnist(tmp_path / "mnist.npz", download=False)
    assert again.checksum == mnist.checksum


def test_env_var_is_used_when_no_flag(mnist_dir: Path, monkeypatch) -> None:
    monkeypatch.setenv("MNIST_DATA_DIR", str(mnist_dir))
    assert "MNIST_DATA_DIR" in load_mnist(None, download=False).source


def test_uncompressed_idx_is_read(mnist_dir: Path, tmp_path: Path) -> None:
    with gzip.open(mnist_dir / "t10k-labels-idx1-ubyte.gz") as src:
        (tmp_path / "t10k-labels-idx1-ubyte").write_bytes(src.read())
    labels = read_idx_labels(tmp_path / "t10k-labels-idx1-ubyte", expected_count=10_000)
    assert labels.shape == (10_000,)


def _copy_with(mnist_dir: Path, tmp_path: Path, name: str, mutate) -> Path:
    for f in mnist_dir.glob("*.gz"):
        shutil.copy(f, tmp_path / f.name)
    target = tmp_path / name
    with gzip.open(target) as src:
        data = src.read()
    with gzip.open(target, "wb") as dst:
        dst.write(mutate(data))
    return target


def test_truncated_images_name_the_file(mnist_dir: Path, tmp_path: Path) -> None:
    target = _copy_with(mnist_dir, tmp_path, "t10k-images-idx3-ubyte.gz", lambda b: b[:-500])
    with pytest.raises(DataError, match=r"t10k-images.*truncated"):
        load_mnist(tmp_path, download=False)
    assert target.exists()


def test_wrong_magic_is_reported(mnist_dir: Path, tmp_path: Path) -> None:
    _copy_with(mnist_dir, tmp_path, "train-labels-idx1-ubyte.gz", lambda b: b"\0\0\x08\x03" + b[4:])
    with pytest.raises(DataError, match=r"train-labels.*magic number"):
        load_mnist(tmp_path, download=False)


def test_out_of_range_label_is_reported(tmp_path: Path) -> None:
    path = tmp_path / "labels-idx1-ubyte"
    path.write_bytes(b"\0\0\x08\x01" + (3).to_bytes(4, "big") + bytes([1, 2, 12]))
    with pytest.raises(DataError, match="outside 0-9"):
        read_idx_labels(path)


def test_corrupt_gzip_is_reported(tmp_path: Path) -> None:
    path = tmp_path / "t10k-images-idx3-ubyte.gz"
    path.write_bytes(b"\x1f\x8b not really gzip")
    with pytest.raises(DataError, match="cannot be read"):
        read_idx_images(path)


def test_missing_directory_and_incomplete_set(tmp_path: Path, mnist_dir: Path) -> None:
    with pytest.raises(DataError, match="does not exist"):
        load_mnist(tmp_path / "nowhere", download=False)
    shutil.copy(mnist_dir / "t10k-labels-idx1-ubyte.gz", tmp_path)
    with pytest.raises(DataError, match="missing"):
        load_mnist(tmp_path, download=False)


def test_validation_split_is_disjoint_and_seeded(mnist) -> None:
    train, val = split_validation(mnist.test, 0.1, seed=3)
    assert len(val) == 1000 and len(train) == 9000
    _, val2 = split_validation(mnist.test, 0.1, seed=3)
    assert np.array_equal(val.y, val2.y)


def test_the_benchmarks_validation_digits_are_the_ones_training_holds_out(mnist,
                                                                         mnist_dir: Path) -> None:
    """bench/device_accuracy.py --digits validation chooses on the digits `python -m train`
    keeps out of training with its default split and seed, never on training or test digits."""
    from tests.camera_like import mnist_digits
    from train.data import VAL_SPLIT
    from train.recipe import Recipe
    from train.split import training_split

    images, labels = mnist_digits(mnist_dir, "validation")
    _, held_out = training_split(mnist, VAL_SPLIT, Recipe().seed)
    assert np.array_equal(labels, held_out.y)
    assert np.array_equal(images / np.float32(255), held_out.x[..., 0])
