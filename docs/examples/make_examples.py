"""Writes the example pictures the README's commands read (run once; the files are committed).

Each is made from MNIST *test* digits drawn on simulated paper by the test suite's camera
simulation (tests/camera_like.py): lighting gradient, vignetting, paper texture, sensor noise.

    .venv/bin/python docs/examples/make_examples.py [--mnist-dir DIR]
"""

from __future__ import annotations

import argparse
import os
import struct
import sys
import zlib
from pathlib import Path

import cv2
import numpy as np

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
sys.path.insert(0, str(REPO))

from tests.camera_like import heic_bytes, mnist_test, paper_frame  # noqa: E402

SIZE = (360, 480)  # height, width: a small camera frame


def bomb_png(width: int, height: int) -> bytes:
    """A tiny PNG whose header declares a huge image: what DIGITS_MAX_IMAGE_PIXELS refuses."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data)))

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
            + chunk(b"IDAT", zlib.compress(b"\0" * 16)) + chunk(b"IEND", b""))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default = os.environ.get("MNIST_DATA_DIR", REPO.parent / "shared" / "data" / "mnist")
    parser.add_argument("--mnist-dir", type=Path, default=Path(default),
                        help="folder with MNIST's t10k IDX files (default $MNIST_DATA_DIR)")
    args = parser.parse_args()
    images, labels = mnist_test(args.mnist_dir)

    def first(digit: int) -> np.ndarray:
        return images[int(np.flatnonzero(labels == digit)[0])]

    cv2.imwrite(str(HERE / "seven.png"), paper_frame([first(7)], seed=7, size=SIZE))
    cv2.imwrite(str(HERE / "42.jpg"), paper_frame([first(4), first(2)], seed=42, size=SIZE),
                [cv2.IMWRITE_JPEG_QUALITY, 85])
    # 42.jpg's scene as an iPhone stores a photo: turned, with the turn that shows it upright.
    scene = paper_frame([first(4), first(2)], seed=42, size=SIZE)
    (HERE / "42.heic").write_bytes(heic_bytes(np.rot90(scene, 1).copy(), 6, quality=80))
    cv2.imwrite(str(HERE / "blank.jpg"), paper_frame([], seed=1, size=SIZE),
                [cv2.IMWRITE_JPEG_QUALITY, 85])
    (HERE / "bomb.png").write_bytes(bomb_png(50_000, 50_000))


if __name__ == "__main__":
    main()
