"""The README's demo camera: a video of MNIST test digits on paper for `--camera opencv:PATH`.

    .venv/bin/python -m bench.demo_video /tmp/demo/digits.avi

640×480 MJPG, one frame per capture when served: a 42 for 8 frames, blank paper for 6, a 7 for
8, blank paper for 6 (the camera loops it). Each frame is checked to read as drawn, none
uncertain, with the shipped model. Needs MNIST (`$MNIST_DATA_DIR`, else ../shared/data/mnist).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import cv2
import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))  # the camera-like frames the tests use
from camera_like import mnist_test, paper_frame  # noqa: E402

from bench.images import default_mnist_dir  # noqa: E402

SIZE = (480, 640)  # height, width
SCRIPT: list[tuple[str | None, int]] = [("42", 8), (None, 6), ("7", 8), (None, 6)]


def _frame_reading(reader: object, number: str | None, images: np.ndarray,
                   labels: np.ndarray) -> np.ndarray:
    """The first paper frame of `number` (None: blank paper) the reader reads as drawn."""
    digits = [images[np.flatnonzero(labels == int(c))[0]] for c in number or ""]
    for seed in range(50):
        frame = paper_frame(digits, seed, SIZE)
        reading = reader.read(frame)
        if reading.number == number and not reading.uncertain:
            return frame
    raise SystemExit(f"no frame of {number!r} among 50 seeds is read right")


def write_demo(path: Path, mnist_dir: Path, model: Path) -> Path:
    from device.reader import DigitReader
    from device.runtime import DigitModel

    reader = DigitReader(DigitModel(model))
    images, labels = mnist_test(mnist_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 2.0, SIZE[::-1])
    if not writer.isOpened():
        raise SystemExit(f"OpenCV cannot write {path}")
    rng = np.random.default_rng(0)
    for number, count in SCRIPT:
        frame = _frame_reading(reader, number, images, labels)
        for _ in range(count):  # a little sensor noise: frames differ
            writer.write(np.clip(frame + rng.normal(0, 2, frame.shape), 0, 255).astype(np.uint8))
    writer.release()
    return path


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path, help="the .avi to write")
    parser.add_argument("--mnist-dir", type=Path, default=default_mnist_dir())
    parser.add_argument("--model", type=Path, default=REPO / "models" / "digitnet_int8.tflite")
    args = parser.parse_args(argv)
    print(f"wrote {write_demo(args.out, args.mnist_dir, args.model)}")


if __name__ == "__main__":
    main()
