"""MNIST loading: IDX files (gzip or raw) or Keras's mnist.npz, validated, as NHWC float32.

Search order: an explicit directory, then ``$MNIST_DATA_DIR``, then Keras's cache
(``~/.keras/datasets/mnist.npz``), then a download through Keras.
"""

from __future__ import annotations

import gzip
import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

IMAGE_MAGIC = 0x00000803
LABEL_MAGIC = 0x00000801
ROWS = COLS = 28
TRAIN_COUNT, TEST_COUNT = 60_000, 10_000

IDX_NAMES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}


class DataError(Exception):
    """MNIST could not be found or a file is not what it claims to be."""


@dataclass(frozen=True)
class Split:
    x: np.ndarray  # (N, 28, 28, 1) float32 in [0, 1]
    y: np.ndarray  # (N,) int64 in 0..9

    def __len__(self) -> int:
        return len(self.y)


@dataclass(frozen=True)
class Mnist:
    train: Split
    test: Split
    source: str
    checksum: str  # sha256 over the raw uint8 pixels and labels, train then test


def _read_bytes(path: Path) -> bytes:
    try:
        if path.suffix == ".gz":
            with gzip.open(path, "rb") as f:
                return f.read()
        return path.read_bytes()
    except (OSError, EOFError, gzip.BadGzipFile) as exc:
        raise DataError(f"{path}: cannot be read ({exc}); re-download it") from exc


def _header(path: Path, raw: bytes, words: int) -> list[int]:
    if len(raw) < 4 * words:
        raise DataError(f"{path}: only {len(raw)} bytes, too short for an IDX header")
    return [int.from_bytes(raw[4 * i : 4 * i + 4], "big") for i in range(words)]


def read_idx_images(path: Path, expected_count: int | None = None) -> np.ndarray:
    """Read an IDX3 image file into (N, 28, 28) uint8, checking magic, shape and length."""
    raw = _read_bytes(path)
    magic, count, rows, cols = _header(path, raw, 4)
    if magic != IMAGE_MAGIC:
        raise DataError(
            f"{path}: magic number {magic:#010x}, expected {IMAGE_MAGIC:#010x} (IDX images)"
        )
    if (rows, cols) != (ROWS, COLS):
        raise DataError(f"{path}: images are {rows}x{cols}, expected 28x28")
    if expected_count is not None and count != expected_count:
        raise DataError(f"{path}: header says {count} images, expected {expected_count}")
    body = len(raw) - 16
    if body != count * rows * cols:
        raise DataError(
            f"{path}: truncated or padded: {body} pixel bytes for {count} images "
            f"(expected {count * rows * cols})"
        )
    return np.frombuffer(raw, dtype=np.uint8, offset=16).reshape(count, rows, cols)


def read_idx_labels(path: Path, expected_count: int | None = None) -> np.ndarray:
    """Read an IDX1 label file into (N,) uint8, checking magic, length and range."""
    raw = _read_bytes(path)
    magic, count = _header(path, raw, 2)
    if magic != LABEL_MAGIC:
        raise DataError(
            f"{path}: magic number {magic:#010x}, expected {LABEL_MAGIC:#010x} (IDX labels)"
        )
    if expected_count is not None and count != expected_count:
        raise DataError(f"{path}: header says {count} labels, expected {expected_count}")
    if len(raw) - 8 != count:
        raise DataError(
            f"{path}: truncated or padded: {len(raw) - 8} label bytes for {count} labels"
        )
    labels = np.frombuffer(raw, dtype=np.uint8, offset=8)
    if labels.size and labels.max() > 9:
        raise DataError(f"{path}: label {int(labels.max())} is outside 0-9")
    return labels


def _find_idx(directory: Path, stem: str) -> Path | None:
    # Accept both the canonical "-idx3-ubyte" and the "." variant some mirrors use.
    for name in (stem, stem.replace("-idx", ".idx")):
        for suffix in (".gz", ""):
            candidate = directory / f"{name}{suffix}"
            if candidate.is_file():
                return candidate
    return None


def _load_idx_dir(directory: Path) -> tuple[np.ndarray, ...] | None:
    paths = {key: _find_idx(directory, stem) for key, stem in IDX_NAMES.items()}
    if not any(paths.values()):
        return None
    missing = [IDX_NAMES[k] for k, p in paths.items() if p is None]
    if missing:
        raise DataError(f"{directory}: MNIST is incomplete, missing {', '.join(missing)}[.gz]")
    x_train = read_idx_images(paths["train_images"])
    y_train = read_idx_labels(paths["train_labels"])
    x_test = read_idx_images(paths["test_images"])
    y_test = read_idx_labels(paths["test_labels"])
    for images, labels, kind in ((x_train, y_train, "train"), (x_test, y_test, "test")):
        if len(images) != len(labels):
            raise DataError(
                f"{directory}: {len(images)} {kind} images but {len(labels)} {kind} labels"
            )
    return x_train, y_train, x_test, y_test


def _load_npz(path: Path) -> tuple[np.ndarray, ...]:
    try:
        with np.load(path) as npz:
            arrays = tuple(npz[k] for k in ("x_train", "y_train", "x_test", "y_test"))
    except (OSError, ValueError, KeyError) as exc:
        raise DataError(f"{path}: not a readable Keras mnist.npz ({exc})") from exc
    x_train, y_train, x_test, y_test = arrays
    for name, x in (("x_train", x_train), ("x_test", x_test)):
        if x.ndim != 3 or x.shape[1:] != (ROWS, COLS):
            raise DataError(f"{path}: {name} has shape {x.shape}, expected (N, 28, 28)")
    for name, x, y in (("train", x_train, y_train), ("test", x_test, y_test)):
        if len(x) != len(y):
            raise DataError(f"{path}: {len(x)} {name} images but {len(y)} labels")
        if y.size and (y.min() < 0 or y.max() > 9):
            raise DataError(f"{path}: {name} labels outside 0-9")
    return tuple(a.astype(np.uint8) for a in arrays)


def _load_from(location: Path) -> tuple[np.ndarray, ...] | None:
    if location.is_file():
        return _load_npz(location)
    if location.is_dir():
        found = _load_idx_dir(location)
        if found is not None:
            return found
        if (location / "mnist.npz").is_file():
            return _load_npz(location / "mnist.npz")
    return None


def keras_cache_path() -> Path:
    keras_home = Path(os.environ.get("KERAS_HOME", Path.home() / ".keras"))
    return keras_home / "datasets" / "mnist.npz"


def candidate_locations(data_dir: str | os.PathLike | None) -> list[tuple[str, Path]]:
    """The places looked in, in order, each with how it was chosen."""
    places: list[tuple[str, Path]] = []
    if data_dir:
        places.append(("--data-dir", Path(data_dir)))
    if os.environ.get("MNIST_DATA_DIR"):
        places.append(("$MNIST_DATA_DIR", Path(os.environ["MNIST_DATA_DIR"])))
    places.append(("Keras cache", keras_cache_path()))
    return places


def to_split(images: np.ndarray, labels: np.ndarray) -> Split:
    x = (images.astype(np.float32) / 255.0)[..., np.newaxis]
    return Split(x=x, y=labels.astype(np.int64))


def _checksum(arrays: tuple[np.ndarray, ...]) -> str:
    digest = hashlib.sha256()
    for a in arrays:
        digest.update(np.ascontiguousarray(a).tobytes())
    return digest.hexdigest()


def load_mnist(data_dir: str | os.PathLike | None = None, *, download: bool = True) -> Mnist:
    """Find, validate and normalise MNIST. Raises DataError with a user-facing message."""
    for how, location in candidate_locations(data_dir):
        if how != "Keras cache" and not location.exists():
            raise DataError(f"{how} {location} does not exist")
        arrays = _load_from(location)
        if arrays is not None:
            return _build(arrays, f"{how}: {location}")
        if how != "Keras cache":
            raise DataError(
                f"{how} {location} holds neither the four MNIST IDX files "
                "(train-images-idx3-ubyte[.gz], ...) nor mnist.npz"
            )
    if not download:
        raise DataError("MNIST not found; pass --data-dir or set MNIST_DATA_DIR")
    try:
        import keras

        arrays = tuple(a for pair in keras.datasets.mnist.load_data() for a in pair)
    except Exception as exc:
        raise DataError(
            f"MNIST is not on this machine and the download failed ({exc}). "
            "Pass --data-dir DIR or set MNIST_DATA_DIR to a folder with the IDX files."
        ) from exc
    return _build(arrays, f"downloaded to {keras_cache_path()}")


def _build(arrays: tuple[np.ndarray, ...], source: str) -> Mnist:
    x_train, y_train, x_test, y_test = arrays
    return Mnist(
        train=to_split(x_train, y_train),
        test=to_split(x_test, y_test),
        source=source,
        checksum=_checksum(arrays),
    )


# The share of the training set held out for validation unless --val-split says otherwise.
VAL_SPLIT = 0.1


def validation_size(count: int, fraction: float) -> int:
    """How many of ``count`` training digits split_validation holds out."""
    return round(count * fraction)


def split_validation(split: Split, fraction: float, seed: int) -> tuple[Split, Split]:
    """Carve a stratified-by-chance validation set out of the training set."""
    if not 0.0 < fraction < 1.0:
        raise ValueError(f"validation fraction must be between 0 and 1, got {fraction}")
    order = np.random.default_rng(seed).permutation(len(split))
    n_val = validation_size(len(split), fraction)
    val, train = order[:n_val], order[n_val:]
    return Split(split.x[train], split.y[train]), Split(split.x[val], split.y[val])
