"""Whole-path accuracy and speed of the device, written to docs/DEVICE_ACCURACY.md.

    .venv/bin/python bench/device_accuracy.py [--model models/digitnet_int8.tflite]

Two sets: the camera-like set (MNIST test digits photographed on paper, simulated, with frames
of two or three digits and frames with none; tests/camera_like.py) and handwriting_dev (400 real
scans, digits 0-7). Each is read by the device path (preprocess.py + the model) and, for
comparison in the same run, by a naive path (the whole grayscale frame resized to 28×28 and
inverted), which is what a camera reading without preprocessing gets.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import cv2
import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from device.reader import DigitReader  # noqa: E402
from device.runtime import DigitModel  # noqa: E402
from tests.camera_like import (  # noqa: E402
    Score,
    camera_like_set,
    handwriting_samples,
    mnist_test,
)

SHARED = REPO.parent / "shared" / "data"


def naive_input(frame: np.ndarray) -> np.ndarray:
    """The baseline: the whole frame, grayscale, squashed to 28×28 and inverted."""
    gray = frame if frame.ndim == 2 else cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)
    small = cv2.resize(gray, (28, 28), interpolation=cv2.INTER_AREA)
    return ((255 - small).astype(np.float32) / 255.0)[..., None]


def run_set(
    reader: DigitReader, samples: list[tuple[str, np.ndarray, str]]
) -> tuple[Score, Score, list[float], list[float]]:
    device, naive = Score(), Score()
    preprocess_ms, inference_ms = [], []
    labels = [int(label) for label in reader.model.sidecar.labels]
    for name, frame, truth in samples:
        reading = reader.read(frame)
        device.record(name, truth, reading.number or "")
        preprocess_ms.append(reading.timings_ms["preprocess"])
        if reading.digits:  # inference time is only meaningful when the model ran
            inference_ms.append(reading.timings_ms["inference"])
        probs = reader.model.predict(naive_input(frame)[None])[0]
        naive.record(name, truth, str(labels[int(np.argmax(probs))]))
    return device, naive, preprocess_ms, inference_ms


def _pct(correct: int, total: int) -> str:
    return f"{100 * correct / total:.1f}% ({correct}/{total})" if total else "–"


def per_digit_table(device: Score, naive: Score) -> list[str]:
    rows = ["| digit | device path | naive resize |", "|---|---|---|"]
    for label in sorted(device.per_digit):
        rows.append(
            f"| {label} | {_pct(*device.per_digit[label])} | {_pct(*naive.per_digit[label])} |"
        )
    rows.append(
        f"| **all** | **{_pct(device.digits_correct, device.digits)}** | "
        f"{_pct(naive.digits_correct, naive.digits)} |"
    )
    return rows


def _ms(values: list[float]) -> str:
    ordered = sorted(values)
    p90 = ordered[int(0.9 * (len(ordered) - 1))]
    return f"{statistics.median(values):.2f} ms (p90 {p90:.2f} ms, n={len(values)})"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=Path, default=REPO / "models" / "digitnet_int8.tflite")
    parser.add_argument("--mnist", type=Path,
                        default=Path(os.environ.get("MNIST_DATA_DIR", SHARED / "mnist")))
    parser.add_argument("--handwriting", type=Path, default=SHARED / "handwriting_dev")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "DEVICE_ACCURACY.md")
    args = parser.parse_args()

    model = DigitModel(args.model, threads=args.threads)
    reader = DigitReader(model)
    started = time.perf_counter()
    frames = camera_like_set(args.mnist)
    camera = [(f"frame {i} ({f.kind})", f.image, f.truth) for i, f in enumerate(frames)]
    reader.read(camera[0][1])  # warm-up: first calls pay for allocation, not for the work
    cam_dev, cam_naive, cam_pre, cam_inf = run_set(reader, camera)
    hw_dev, hw_naive, hw_pre, hw_inf = run_set(reader, handwriting_samples(args.handwriting))
    # The ceiling: the model on the very same MNIST digits, straight from the 28×28 files.
    images, mnist_labels = mnist_test(args.mnist)
    drawn = np.array([j for f in frames for j in f.sources])
    raw = model.predict(images[drawn][..., None].astype(np.float32) / 255.0).argmax(axis=1)
    ceiling = int((raw == mnist_labels[drawn]).sum())
    elapsed = time.perf_counter() - started

    shown_model = model.path.relative_to(REPO) if model.path.is_relative_to(REPO) else model.path
    lines = [
        "# Device accuracy: from a picture to a digit",
        "",
        "Written by `bench/device_accuracy.py` (re-run it after changing the model or "
        "`device/preprocess.py`). Whole path = `device.reader.DigitReader`: preprocessing "
        "(`device/preprocess.py`) plus the model through LiteRT, exactly what the Pi runs. "
        "The naive baseline, measured in the same run, squashes the whole grayscale frame to "
        "28×28 and inverts it.",
        "",
        f"- model: `{shown_model}` "
        f"(sha256 `{model.sha256[:16]}…`), runtime `{model.runtime}`, {args.threads} threads",
        f"- measured {datetime.now(UTC):%Y-%m-%d %H:%M} UTC on {platform.machine()}, "
        f"{os.cpu_count()} CPUs (shared with other jobs, so timings are pessimistic); "
        f"whole run {elapsed:.0f} s",
        "",
        "## Camera-like set (MNIST test digits on simulated paper photos)",
        "",
        f"{len(frames)} frames from `tests/camera_like.py` (seed 0): paper texture, lighting "
        "gradients and vignetting, ink in five colours, small rotations, blur, noise and JPEG; "
        f"{cam_dev.frames} frames with digits ({cam_dev.multi} of them with two or three), "
        f"{cam_dev.empty} with none (blank, ruled, specks).",
        "",
        f"- digit accuracy (digits read in place; a wrongly segmented frame scores all its "
        f"digits wrong): **{_pct(cam_dev.digits_correct, cam_dev.digits)}**",
        f"- the model alone on the same {len(drawn)} digits as 28×28 MNIST files (the ceiling "
        f"for any preprocessing): {_pct(ceiling, len(drawn))}",
        f"- frames read exactly: {_pct(cam_dev.frames_correct, cam_dev.frames)}; frames with "
        f"several digits read exactly, in order: {_pct(cam_dev.multi_correct, cam_dev.multi)}",
        f"- frames without a digit that yielded one: **{cam_dev.empty_read_as_digit} of "
        f"{cam_dev.empty}** (naive resize: {cam_naive.empty_read_as_digit} of {cam_naive.empty})",
        "",
        *per_digit_table(cam_dev, cam_naive),
        "",
        "## handwriting_dev (400 real scans, digits 0-7)",
        "",
        "Real handwriting from scanned sheets, not MNIST: never trained on, never tuned per digit.",
        "",
        *per_digit_table(hw_dev, hw_naive),
        "",
        "## Speed (median per frame, this machine)",
        "",
        "| set | preprocessing | inference (all digits of a frame in one batch) |",
        "|---|---|---|",
        f"| camera-like (240×320 to 360×480) | {_ms(cam_pre)} | {_ms(cam_inf)} |",
        f"| handwriting_dev (~130×172) | {_ms(hw_pre)} | {_ms(hw_inf)} |",
        "",
        "## Misread",
        "",
        "Camera-like: " + ("; ".join(f"{n}: {t or '(none)'} → {r or '(none)'}"
                                     for n, t, r in cam_dev.failures) or "none"),
        "",
        "handwriting_dev: " + ("; ".join(f"{n}: {t} → {r or '(none)'}"
                                         for n, t, r in hw_dev.failures) or "none"),
        "",
    ]
    args.out.write_text("\n".join(lines), encoding="utf-8")
    print(f"camera-like {cam_dev.accuracy:.4f}, handwriting_dev {hw_dev.accuracy:.4f}, "
          f"empty frames read as a digit {cam_dev.empty_read_as_digit}; wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
