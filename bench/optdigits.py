"""Real handwriting from outside this repository: the test digits of UCI's "Optical Recognition
of Handwritten Digits" (optdigits), only ever measured, never trained or tuned on.

1,797 digits by 13 writers (E. Alpaydin and C. Kaynak, 1998): NIST's programs cut each digit
out of a scanned form as a 32×32 bitmap and counted its ink in 4×4 blocks, giving an 8×8 grid
of counts 0..16 per digit, one CSV row each (64 counts, then the label). scikit-learn ships
this very file as `sklearn/datasets/data/digits.csv.gz`, so it can be had from PyPI, the one
place besides the repository this machine reaches:

    python -m bench.optdigits .cache/optdigits/digits.csv.gz   # what `make test` runs

UCI's own `optdigits.tes` (archive.ics.uci.edu, dataset 80) is the same rows, uncompressed.
"""

from __future__ import annotations

import argparse
import gzip
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import cv2
import numpy as np

NAME = "UCI optdigits (outside)"
# The wheel's data file: every platform's wheel of a release holds the same bytes.
SKLEARN = "scikit-learn==1.9.1"
IN_THE_WHEEL = "sklearn/datasets/data/digits.csv.gz"
UCI_FILE = "optdigits.tes from archive.ics.uci.edu (dataset 80)"
WHERE = f"{UCI_FILE}, or scikit-learn's copy, which `python -m bench.optdigits FILE` fetches"


def read(path: Path) -> list[tuple[str, np.ndarray, str]]:
    """optdigits rows (plain or gzipped CSV) as (name, picture, label): white on black, counts
    scaled to 0..255, enlarged ×16 smoothly as a viewer shows a small scan. The device path
    reads the 8×8 grid itself alike (its working scale); the textbook pipeline beside it would
    not (Otsu over 64 pixels), and the comparison is between the two."""
    with path.open("rb") as f:
        packed = f.read(2) == b"\x1f\x8b"  # gzip's magic, whatever the file is called
    with (gzip.open if packed else open)(path, "rt") as f:
        rows = np.loadtxt(f, delimiter=",", dtype=np.int64, ndmin=2)
    if rows.shape[1] != 65 or rows.min() < 0 or rows[:, :64].max() > 16 or rows[:, 64].max() > 9:
        raise ValueError(f"{path} is not optdigits: each row must be 64 counts from 0 to 16 and "
                         f"a label from 0 to 9 (found {rows.shape[1]} columns)")
    grids = np.minimum(rows[:, :64] * 16, 255).astype(np.uint8).reshape(-1, 8, 8)
    return [(f"optdigits #{i}", cv2.resize(grid, (128, 128), interpolation=cv2.INTER_CUBIC),
             str(int(label)))
            for i, (grid, label) in enumerate(zip(grids, rows[:, 64], strict=True))]


def fetch(dest: Path) -> None:
    """Put scikit-learn's copy of the optdigits test set at ``dest``: one wheel downloaded from
    PyPI (no dependencies, nothing installed), the file taken out of it."""
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps",
                        "--only-binary", ":all:", "--dest", tmp, SKLEARN], check=True)
        wheel = next(Path(tmp).glob("*.whl"))
        with zipfile.ZipFile(wheel) as archive:
            data = archive.read(IN_THE_WHEEL)
    dest.parent.mkdir(parents=True, exist_ok=True)
    partial = dest.with_name(dest.name + ".partial")
    partial.write_bytes(data)
    read(partial)  # a file that is not optdigits never takes the name
    partial.replace(dest)


def main() -> int:
    parser = argparse.ArgumentParser(description="Fetch UCI's optdigits test set (scikit-"
                                     "learn's copy, from PyPI) for bench/device_accuracy.py "
                                     "--optdigits and the test suite.")
    parser.add_argument("dest", type=Path, help="where to put digits.csv.gz")
    args = parser.parse_args()
    try:
        fetch(args.dest)
    except (OSError, subprocess.CalledProcessError, KeyError, StopIteration, ValueError) as error:
        print(f"could not fetch optdigits from PyPI ({error}); the outside handwriting is then "
              f"not measured. Get {UCI_FILE} instead and pass it to bench/device_accuracy.py "
              "with --optdigits.", file=sys.stderr)
        return 1
    print(f"wrote {args.dest} ({len(read(args.dest)):,} digits)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
