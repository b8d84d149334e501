"""A video-file camera for the preview tests: MNIST test digits, dark on light paper."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

FRAME_SIZE = (240, 320)  # height, width


def paper_frame(digit: np.ndarray, size: tuple[int, int] = FRAME_SIZE) -> np.ndarray:
    """An MNIST digit (white on black, 28×28) as a camera would see it: dark ink on paper."""
    height, width = size
    side = int(height * 0.7)
    ink = cv2.resize(digit, (side, side), interpolation=cv2.INTER_CUBIC).astype(np.float32) / 255
    frame = np.full((height, width), 232.0, np.float32)
    y, x = (height - side) // 2, (width - side) // 2
    frame[y : y + side, x : x + side] -= np.clip(ink, 0, 1) * 200
    return cv2.cvtColor(np.clip(frame, 0, 255).astype(np.uint8), cv2.COLOR_GRAY2BGR)


def readable_digits(
    model_path: Path, mnist_dir: Path, labels: list[int]
) -> dict[int, np.ndarray]:
    """For each label, the first MNIST test digit the service reads right from a paper frame.

    The preview tests are about the page, not accuracy: they want digits whose reading is not
    in doubt, whatever model is shipped.
    """
    from device.reader import DigitReader
    from device.runtime import DigitModel
    from train.data import read_idx_images, read_idx_labels

    images = read_idx_images(mnist_dir / "t10k-images-idx3-ubyte.gz")
    truth = read_idx_labels(mnist_dir / "t10k-labels-idx1-ubyte.gz")
    reader = DigitReader(DigitModel(model_path))
    chosen: dict[int, np.ndarray] = {}
    for label in labels:
        for index in np.flatnonzero(truth == label)[:50]:
            reading = reader.read(paper_frame(images[index]))
            if reading.number == str(label) and (reading.confidence or 0) > 0.9:
                chosen[label] = images[index]
                break
        else:
            raise AssertionError(f"no MNIST test {label} among the first 50 is read right")
    return chosen


def write_digit_video(
    path: Path,
    digits: list[np.ndarray],
    frames_per_digit: int,
    size: tuple[int, int] = FRAME_SIZE,
) -> Path:
    """An MJPG .avi showing each digit for `frames_per_digit` frames (the camera loops it)."""
    return write_segments_video(path, [(digit, frames_per_digit) for digit in digits], size)


def write_segments_video(
    path: Path,
    segments: list[tuple[np.ndarray | None, int]],
    size: tuple[int, int] = FRAME_SIZE,
) -> Path:
    """An MJPG .avi of (digit, frames) segments in order; a None digit is blank paper."""
    height, width = size
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10.0, (width, height))
    if not writer.isOpened():
        raise AssertionError("OpenCV cannot write MJPG video here")
    rng = np.random.default_rng(0)
    blank = np.zeros((28, 28), np.uint8)
    for digit, frames in segments:
        frame = paper_frame(blank if digit is None else digit, size)
        for _ in range(frames):
            noise = rng.normal(0, 3, frame.shape)  # a little sensor noise: frames differ
            writer.write(np.clip(frame + noise, 0, 255).astype(np.uint8))
    writer.release()
    return path
