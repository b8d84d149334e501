"""Read all 10,000 MNIST test digits with the device side only, and save what it predicted.

Runs on anything the device side runs on: this machine's venv, Debian arm64 under qemu, a real
Pi. It needs numpy, a TFLite runtime and `device/` (plus OpenCV for the optional scanned set):
no TensorFlow, nothing from train/ or convert/, so it proves the Pi's import path, not ours.

    python bench/arm64/predict_mnist.py --mnist-dir DIR [--model M] [--out DIR]

Writes OUT/predictions.npy (int8 digit per test image), OUT/probabilities.npy and OUT/summary.json;
prints one line per set with accuracy and wall time.
"""

from __future__ import annotations

import argparse
import csv
import gzip
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))  # `device` from this checkout, wherever the interpreter came from

from device.runtime import DigitModel  # noqa: E402
from device.sidecar import ModelError  # noqa: E402

IMAGES = "t10k-images-idx3-ubyte.gz"
LABELS = "t10k-labels-idx1-ubyte.gz"
BATCH = 500


def read_idx(path: Path, magic: int) -> np.ndarray:
    """An IDX array (gzip or raw), validated against its header so a truncated file says so."""
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as handle:
        data = handle.read()
    if len(data) < 8 or int.from_bytes(data[:4], "big") != magic:
        raise SystemExit(f"{path} is not an IDX file with magic {magic:#x}")
    ndim = magic & 0xFF
    dims = [int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)]
    body = np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim)
    expected = int(np.prod(dims))
    if body.size != expected:
        raise SystemExit(f"{path} holds {body.size} bytes, its header promises {expected}")
    return body.reshape(dims)


def find(directory: Path, name: str) -> Path:
    for candidate in (directory / name, directory / name.removesuffix(".gz")):
        if candidate.is_file():
            return candidate
    raise SystemExit(f"{directory / name} not found; pass --mnist-dir with the MNIST IDX files")


def read_mnist(model: DigitModel, mnist_dir: Path) -> dict:
    images = read_idx(find(mnist_dir, IMAGES), 0x803)
    labels = read_idx(find(mnist_dir, LABELS), 0x801)
    x = images.astype(np.float32)[..., np.newaxis] / 255.0
    start = time.perf_counter()
    probabilities = np.concatenate(
        [model.predict(x[i : i + BATCH]) for i in range(0, len(x), BATCH)]
    )
    wall = time.perf_counter() - start
    predictions = probabilities.argmax(axis=1).astype(np.int8)
    return {
        "count": len(labels),
        "correct": int((predictions == labels).sum()),
        "accuracy": float((predictions == labels).mean()),
        "wall_s": round(wall, 3),
        "predictions": predictions,
        "probabilities": probabilities.astype(np.float32),
    }


def read_scans(model: DigitModel, scans_dir: Path) -> dict:
    """The full camera pipeline (OpenCV preprocessing + model) on real scanned digits."""
    import cv2

    from device.reader import DigitReader

    reader = DigitReader(model)
    with (scans_dir / "LABELS.csv").open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    start = time.perf_counter()
    digits = []
    for row in rows:
        frame = cv2.imread(str(scans_dir / row["file"]), cv2.IMREAD_COLOR)
        if frame is None:
            raise SystemExit(f"cannot decode {scans_dir / row['file']}")
        reading = reader.read(frame)
        digits.append(-1 if reading.digit is None else reading.digit)
    wall = time.perf_counter() - start
    labels = np.array([int(row["label"]) for row in rows])
    predictions = np.array(digits, dtype=np.int8)
    return {
        "count": len(rows),
        "correct": int((predictions == labels).sum()),
        "accuracy": float((predictions == labels).mean()),
        "wall_s": round(wall, 3),
        "predictions": predictions,
    }


def operating_system() -> str:
    """The distribution's own name (under qemu -L, the emulated rootfs's /etc/os-release)."""
    try:
        return platform.freedesktop_os_release().get("PRETTY_NAME", "unknown")
    except OSError:
        return "unknown"


def opencv_version() -> str | None:
    try:
        import cv2
    except ImportError:
        return None
    return cv2.__version__


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=REPO / "models" / "digitnet_int8.tflite")
    parser.add_argument("--mnist-dir", type=Path, required=True)
    parser.add_argument("--scans-dir", type=Path, help="handwriting_dev-style dir (LABELS.csv)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, help="directory for predictions and summary.json")
    args = parser.parse_args(argv)

    try:
        model = DigitModel(args.model, threads=args.threads)
    except ModelError as exc:
        raise SystemExit(f"error: {exc}") from None
    summary: dict = {
        "machine": platform.machine(),
        "system": operating_system(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "opencv": opencv_version(),
        "runtime": model.runtime,
        "model": model.name,
        "model_sha256": model.sha256,
        # The first look the sidecar names, if any: it answers most digits alone.
        "first_look_sha256": model.first_look.sha256 if model.first_look else None,
    }
    sets = {"mnist_test": read_mnist(model, args.mnist_dir)}
    if args.scans_dir:
        sets["scans"] = read_scans(model, args.scans_dir)
    for name, result in sets.items():
        print(
            f"{name}: {result['correct']}/{result['count']} correct "
            f"({result['accuracy']:.2%}) in {result['wall_s']:.1f} s on {summary['machine']}"
        )
        if args.out:
            args.out.mkdir(parents=True, exist_ok=True)
            np.save(args.out / f"{name}_predictions.npy", result.pop("predictions"))
            if "probabilities" in result:
                np.save(args.out / f"{name}_probabilities.npy", result.pop("probabilities"))
        summary[name] = {k: v for k, v in result.items() if not isinstance(v, np.ndarray)}
    summary["answered"] = model.digits_answered()
    if args.out:
        (args.out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
