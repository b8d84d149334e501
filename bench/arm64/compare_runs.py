"""Compare predict_mnist.py runs (x86_64, then one per Debian arm64 suite) as Markdown.

    python bench/arm64/compare_runs.py OUT/x86_64 OUT/bookworm OUT/trixie --doc docs/ARM64.md

Exits 1 when any prediction of any arm64 run differs from x86_64's (MNIST or scans), so
arm64_proof.sh fails loudly.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

HOW = """\
How it was made (`bench/arm64/arm64_proof.sh`, everything cached under `.build/arm64/SUITE/`):

- **arm64 side**, once per Debian suite: Debian's own arm64 rootfs (`debootstrap --foreign
  --variant=minbase --include=python3.X,python3-numpy`, packages unpacked with `dpkg-deb -x`),
  i.e. the suite's own aarch64 Python and apt `python3-numpy`, as on Raspberry Pi OS of the
  same suite, plus the aarch64 wheels the device side needs (`pip download --platform
  manylinux_2_*_aarch64 --python-version 3.X --only-binary=:all: ai-edge-litert==2.3.0
  opencv-python-headless==4.11.0.86 numpy==<apt's version>`: resolved against apt's numpy,
  which is not unpacked, and the rest unpacked with `pip install --target`). It runs under
  `qemu-aarch64-static` user-mode emulation (`-L rootfs`, no binfmt_misc or chroot needed),
  emulating a Pi's core (`QEMU_CPU`: cortex-a72 = Pi 4, the default; cortex-a76 = Pi 5) with
  a matching `/proc/cpuinfo` inside the rootfs: qemu 7.2 shows the host's x86 cpuinfo to the
  guest, and LiteRT's XNNPACK (via the cpuinfo library) crashes on it.
- **x86_64 side**: this repository's `.venv`.
- Every run reads the same snapshot of `device/` and of the model, copied before any starts,
  through `device.runtime.DigitModel` (LiteRT with XNNPACK, as on the Pi), batches of 500. The
  scanned set goes through the whole camera pipeline (`device.reader.DigitReader`: OpenCV
  preprocessing, then the model) on the 400 scans of `handwriting_dev`.
- Wall times under emulation say nothing about a real Pi's speed (qemu translates every
  instruction); they are here so a reader knows what running the proof costs.
"""

INSTALLER_SECTION = "\n## The installer\n"
SETS = (("mnist_test", "MNIST test digits"), ("scans", "handwriting_dev scans"))


def load(run: Path) -> tuple[dict, dict[str, np.ndarray]]:
    summary = json.loads((run / "summary.json").read_text())
    arrays = {path.stem: np.load(path) for path in sorted(run.glob("*.npy"))}
    return summary, arrays


def _answered(run: dict) -> str:
    if not run.get("first_look_sha256"):
        return "no first look: the model answered all"
    answered = run.get("answered", {})
    return f"{answered.get('first_look', 0):,} / {answered.get('model', 0):,}"


def compare(x86_dir: Path, arm_dirs: list[Path]) -> tuple[str, dict[str, tuple[int, int]]]:
    """The Markdown table and notes, and per arm64 run and set (same predictions, count)."""
    x86, x86_arrays = load(x86_dir)
    arms = [(path.name, *load(path)) for path in arm_dirs]
    for name, arm, _ in arms:
        if (x86["model_sha256"], x86.get("first_look_sha256")) != (
                arm["model_sha256"], arm.get("first_look_sha256")):
            raise SystemExit(f"{name} used another model than x86_64; re-run arm64_proof.sh")

    def row(title: str, x86_cell: str, cells: list[str]) -> str:
        return f"| {title} | {x86_cell} | " + " | ".join(cells) + " |"

    lines = [
        f"Model `{x86['model']}` (sha256 `{x86['model_sha256'][:16]}…`).",
        "",
        row("", "x86_64", [f"aarch64 (qemu): {arm.get('system', name)}" for name, arm, _ in arms]),
        "|---|---|" + "---|" * len(arms),
        row("Python / numpy / OpenCV", _versions(x86), [_versions(arm) for _, arm, _ in arms]),
        row("runtime", x86["runtime"], [arm["runtime"] for _, arm, _ in arms]),
        row("digits answered by the first look / the whole model", _answered(x86),
            [_answered(arm) for _, arm, _ in arms]),
    ]
    agreement: dict[str, tuple[int, int]] = {}
    notes = []
    for key, title in SETS:
        if key not in x86 or any(key not in arm for _, arm, _ in arms):
            continue
        ours = x86_arrays[f"{key}_predictions"]
        same = [int((ours == arrays[f"{key}_predictions"]).sum()) for _, _, arrays in arms]
        for (name, _, _), count in zip(arms, same, strict=True):
            agreement[f"{title} ({name})"] = (count, len(ours))
        lines += [
            row(f"{title}: correct", _correct(x86[key]),
                [_correct(arm[key]) for _, arm, _ in arms]),
            row(f"{title}: wall time", f"{x86[key]['wall_s']:.1f} s",
                [f"{arm[key]['wall_s']:.1f} s" for _, arm, _ in arms]),
            row(f"{title}: same prediction as x86_64", "",
                [f"{count}/{len(ours)}" for count in same]),
        ]
        probs = f"{key}_probabilities"
        for name, _, arrays in arms:
            if probs in x86_arrays and probs in arrays:
                diff = np.abs(x86_arrays[probs] - arrays[probs])
                notes.append(
                    f"{title}, {name}: the ten probabilities are bit-identical to x86_64's for "
                    f"{int((diff.max(axis=1) == 0).sum())}/{len(diff)} digits; the largest "
                    f"difference is {diff.max():.1e} (one int8 output step is 1/256 = 0.0039; "
                    "differences far below it are float rounding in the softmax the host "
                    "takes, whose exp differs in its last bits between numpy builds)."
                )
    return "\n".join([*lines, "", *notes]), agreement


def _versions(summary: dict) -> str:
    return f"{summary['python']} / {summary['numpy']} / {summary.get('opencv') or '?'}"


def _correct(result: dict) -> str:
    return f"{result['correct']}/{result['count']} ({result['accuracy']:.2%})"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("x86_run", type=Path)
    parser.add_argument("arm_runs", type=Path, nargs="+", help="one per Debian suite")
    parser.add_argument("--doc", type=Path, help="write docs/ARM64.md here")
    parser.add_argument("--when", default="", help="a date line for the document")
    args = parser.parse_args(argv)
    table, agreement = compare(args.x86_run, args.arm_runs)
    identical = all(same == count for same, count in agreement.values())
    suites = " and ".join(path.name for path in args.arm_runs)
    if identical:
        sets = {title.rsplit(" (", 1)[0]: count for title, (_, count) in agreement.items()}
        listed = " and ".join(f"all {count:,} {title}" for title, count in sets.items())
        verdict = f"**Identical predictions on {suites}: {listed}.**"
    else:
        verdict = "**Predictions differ on arm64: see the table.**"
    print(table)
    print(verdict)
    if args.doc:
        when = f" ({args.when})" if args.when else ""
        # bench/arm64/installer_chroot.sh writes the section about the installer: kept.
        old = args.doc.read_text() if args.doc.is_file() else ""
        installer = old.partition(INSTALLER_SECTION)[2]
        args.doc.write_text(
            f"# arm64 proof{when}\n\n"
            "The device side (`device/`) run on Debian arm64, once per suite Raspberry Pi OS "
            f"is built on ({suites}), with each suite's own Python and apt numpy, under qemu, "
            "reading all 10,000 MNIST test digits with the shipped model, against the same run "
            f"on x86_64.\n\n{verdict}\n\n{table}\n\n{HOW}"
            + (f"{INSTALLER_SECTION}{installer}" if installer else "")
        )
    return 0 if identical else 1


if __name__ == "__main__":
    sys.exit(main())
