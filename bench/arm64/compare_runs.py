"""Compare two predict_mnist.py runs (x86_64 and aarch64) and write the result as Markdown.

    python bench/arm64/compare_runs.py OUT/x86_64 OUT/aarch64 --doc docs/ARM64.md

Exits 1 when any prediction differs (MNIST or scans), so arm64_proof.sh fails loudly.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

HOW = """\
How it was made (`bench/arm64/arm64_proof.sh`, everything cached under `.build/arm64/`):

- **arm64 side**: Debian bookworm arm64 (`debootstrap --foreign --variant=minbase
  --include=python3.11,python3-numpy`, packages unpacked with `dpkg-deb -x`), i.e. Debian's own
  aarch64 `python3.11` and `python3-numpy` 1.24 as on Raspberry Pi OS Bookworm, plus the
  aarch64 wheels the device side needs (`pip download --platform manylinux_2_*_aarch64
  --python-version 3.11 --only-binary=:all: ai-edge-litert==2.3.0
  opencv-python-headless==4.11.0.86`, resolved against numpy 1.24.2 and unpacked with
  `pip install --target`). It runs under `qemu-aarch64-static` user-mode emulation
  (`-L rootfs`, no binfmt_misc or chroot needed), emulating a Pi's core (`QEMU_CPU`:
  cortex-a72 = Pi 4, the default; cortex-a76 = Pi 5) with a matching `/proc/cpuinfo` inside
  the rootfs: qemu 7.2 shows the host's x86 cpuinfo to the guest, and LiteRT's XNNPACK (via
  the cpuinfo library) crashes on it.
- **x86_64 side**: this repository's `.venv`.
- Both run the same snapshot of `device/` and of the model, copied before either starts, through
  `device.runtime.DigitModel` (LiteRT with XNNPACK, as on the Pi), batches of 500. The scanned
  set goes through the whole camera pipeline (`device.reader.DigitReader`: OpenCV
  preprocessing, then the model) on the 400 scans of `handwriting_dev`.
- Wall times under emulation say nothing about a real Pi's speed (qemu translates every
  instruction); they are here so a reader knows what running the proof costs.
"""


def load(run: Path) -> tuple[dict, dict[str, np.ndarray]]:
    summary = json.loads((run / "summary.json").read_text())
    arrays = {path.stem: np.load(path) for path in sorted(run.glob("*.npy"))}
    return summary, arrays


def compare(x86_dir: Path, arm_dir: Path) -> tuple[str, dict[str, tuple[int, int]]]:
    """The Markdown table and notes, and per set (same predictions, count)."""
    x86, x86_arrays = load(x86_dir)
    arm, arm_arrays = load(arm_dir)
    if x86["model_sha256"] != arm["model_sha256"]:
        raise SystemExit("the two runs used different models; re-run arm64_proof.sh")
    lines = [
        f"Model `{x86['model']}` (sha256 `{x86['model_sha256'][:16]}…`).",
        "",
        "| | x86_64 | aarch64 (qemu) |",
        "|---|---|---|",
        f"| Python / numpy | {x86['python']} / {x86['numpy']} | {arm['python']} / {arm['numpy']} |",
        f"| runtime | {x86['runtime']} | {arm['runtime']} |",
    ]
    agreement: dict[str, tuple[int, int]] = {}
    notes = []
    for name, title in (("mnist_test", "MNIST test digits"), ("scans", "handwriting_dev scans")):
        if name not in x86 or name not in arm:
            continue
        a, b = x86[name], arm[name]
        pa, pb = x86_arrays[f"{name}_predictions"], arm_arrays[f"{name}_predictions"]
        same = int((pa == pb).sum())
        agreement[title] = (same, len(pa))
        lines += [
            f"| {title}: correct | {a['correct']}/{a['count']} ({a['accuracy']:.2%}) "
            f"| {b['correct']}/{b['count']} ({b['accuracy']:.2%}) |",
            f"| {title}: wall time | {a['wall_s']:.1f} s | {b['wall_s']:.1f} s |",
            f"| {title}: same prediction on both | {same}/{len(pa)} | |",
        ]
        probs = f"{name}_probabilities"
        if probs in x86_arrays and probs in arm_arrays:
            diff = np.abs(x86_arrays[probs] - arm_arrays[probs])
            notes.append(
                f"{title}: the ten probabilities are bit-identical for "
                f"{int((diff.max(axis=1) == 0).sum())}/{len(diff)} digits; the largest "
                f"difference is {diff.max():.6f} (one int8 output step is 1/256 = 0.0039)."
            )
    return "\n".join([*lines, "", *notes]), agreement


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("x86_run", type=Path)
    parser.add_argument("arm_run", type=Path)
    parser.add_argument("--doc", type=Path, help="write docs/ARM64.md here")
    parser.add_argument("--when", default="", help="a date line for the document")
    args = parser.parse_args(argv)
    table, agreement = compare(args.x86_run, args.arm_run)
    identical = all(same == count for same, count in agreement.values())
    if identical:
        sets = " and ".join(f"all {count:,} {title}" for title, (_, count) in agreement.items())
        verdict = f"**Identical predictions on {sets}.**"
    else:
        verdict = "**Predictions differ on arm64: see the table.**"
    print(table)
    print(verdict)
    if args.doc:
        when = f" ({args.when})" if args.when else ""
        args.doc.write_text(
            f"# arm64 proof{when}\n\n"
            "The device side (`device/`) run on Debian bookworm arm64 (Python 3.11, numpy 1.24, "
            "as on Raspberry Pi OS Bookworm) under qemu, reading all 10,000 MNIST test digits "
            "with the shipped model, against the same run on x86_64.\n\n"
            f"{verdict}\n\n{table}\n\n{HOW}"
        )
    return 0 if identical else 1


if __name__ == "__main__":
    sys.exit(main())
