"""The two uploads the HTTP benchmark sends, made reproducibly from one MNIST test digit.

- ``digit_28.png``: the digit as a 28×28 grey PNG, dark ink on white (what a user draws or crops).
- ``photo_1920x1080.jpg``: the same digit written large on a 1080p "photo" of paper (uneven
  light, sensor noise, JPEG quality 90): the size a phone app uploads after its own downscaling,
  and a common Pi/USB camera still size.
"""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np

from train.data import read_idx_images, read_idx_labels

PHOTO_SIZE = (1920, 1080)  # width, height
DIGIT_INDEX = 1  # MNIST t10k #1 is a 2


def mnist_test_images(mnist_dir: Path) -> np.ndarray:
    """(10000, 28, 28) uint8 MNIST test digits (white on black)."""
    for name in ("t10k-images-idx3-ubyte.gz", "t10k-images-idx3-ubyte"):
        if (mnist_dir / name).is_file():
            return read_idx_images(mnist_dir / name)
    raise SystemExit(
        f"no MNIST test images in {mnist_dir}; pass --mnist-dir or set MNIST_DATA_DIR"
    )


def digit_label(mnist_dir: Path) -> int:
    """The true digit drawn in both uploads."""
    for name in ("t10k-labels-idx1-ubyte.gz", "t10k-labels-idx1-ubyte"):
        if (mnist_dir / name).is_file():
            return int(read_idx_labels(mnist_dir / name)[DIGIT_INDEX])
    raise SystemExit(f"no MNIST test labels in {mnist_dir}; pass --mnist-dir")


def default_mnist_dir() -> Path:
    here = Path(__file__).resolve().parents[1]
    return Path(os.environ.get("MNIST_DATA_DIR", here.parent / "shared" / "data" / "mnist"))


def digit_png(digit: np.ndarray) -> bytes:
    ok, png = cv2.imencode(".png", 255 - digit)
    assert ok
    return png.tobytes()


def phone_photo(digit: np.ndarray, seed: int = 0) -> bytes:
    """A 1920×1080 JPEG of the digit in dark ink on unevenly lit, slightly noisy paper."""
    width, height = PHOTO_SIZE
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    light = 0.82 + 0.12 * (xx / width) + 0.06 * (yy / height)  # a lamp off to one side
    paper = np.stack([light * 238, light * 232, light * 222], axis=-1)
    side = 600  # the digit fills about half the frame height, as when holding paper up to it
    ink = cv2.resize(digit, (side, side), interpolation=cv2.INTER_CUBIC).astype(np.float32) / 255
    top, left = (height - side) // 2, (width - side) // 2
    region = paper[top : top + side, left : left + side]
    ink_colour = np.array([70, 45, 35], dtype=np.float32)  # blue ballpoint, in BGR
    region[:] = region * (1 - ink[..., None]) + ink_colour * ink[..., None]
    paper += rng.normal(0, 4, paper.shape).astype(np.float32)
    frame = np.clip(paper, 0, 255).astype(np.uint8)
    ok, jpeg = cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, 90])
    assert ok
    return jpeg.tobytes()


def write_uploads(out: Path, mnist_dir: Path) -> dict[str, Path]:
    """Writes both uploads into `out`; returns {"png": path, "jpeg": path}."""
    out.mkdir(parents=True, exist_ok=True)
    digit = mnist_test_images(mnist_dir)[DIGIT_INDEX]
    paths = {"png": out / "digit_28.png", "jpeg": out / "photo_1920x1080.jpg"}
    paths["png"].write_bytes(digit_png(digit))
    paths["jpeg"].write_bytes(phone_photo(digit))
    return paths
