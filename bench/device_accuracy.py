"""Whole-path accuracy of the device on every kind of picture, written to docs/DEVICE_ACCURACY.md.

    .venv/bin/python bench/device_accuracy.py [--model models/digitnet_int8.tflite]

Sets, all read in one run by the device path (device.reader.DigitReader: preprocessing plus the
model through LiteRT, exactly what the Pi runs) and, beside it, by a textbook pipeline with the
same model:
- the picture families of train/pictures.py (the MNIST file itself, upscaled either polarity,
  tight crops, a canvas drawing, USPS style, bold marker, hairline pen, a crop loose on one
  side, a phone photo cropped to the digit, a fine pen's crop, a form's boxed field, an
  underlined digit, a photo with a shadow across the digit), each made from the same
  500 MNIST *test* digits, which training never sees;
- a lifted-pen probe: a separate draw of 500 MNIST test digits, each cut once by a gap of about
  a stroke's width (tests/camera_like.py), to see how the pieces of one digit are joined;
- the camera-like set (MNIST test digits on simulated paper photos, frames of two or three
  digits, frames with none; tests/camera_like.py);
- a sheet-on-a-table probe: 200 camera frames of a sheet lying on a table with a pen, pencil or
  coin beside it or across its edge, a third of the sheets blank (tests/camera_like.py), to see
  whether the table and what lies on it stay out of the reading;
- handwriting_dev (400 real scans) and photos_dev (268 real phone photos): development checks,
  never trained on, never tuned to;
- with --optdigits FILE, real handwriting from outside this repository: the test digits of UCI's
  "Optical Recognition of Handwritten Digits" (13 writers; NIST's form scans, each digit a
  32×32 bitmap counted down to 8×8), only measured, never trained or tuned on.
With --digits validation the generated sets are made from the validation digits training
holds out instead, and the development sets are left out: that run is the one to choose between
two ways of reading on; the test run only reports.
With the reading's `uncertain` flag: the accuracy of the readings not flagged against the share
flagged, at the model's own threshold and along the curve.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import cv2
import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench import optdigits  # noqa: E402
from device.reader import DigitReader  # noqa: E402
from device.runtime import DigitModel  # noqa: E402
from device.sidecar import ModelError  # noqa: E402
from tests.camera_like import (  # noqa: E402
    Score,
    camera_like_set,
    labelled_pictures,
    lifted_pen_set,
    picture_families,
    sheet_on_table_set,
)
from train.arguments import positive_int  # noqa: E402
from train.data import DataError  # noqa: E402

SHARED = REPO.parent / "shared" / "data"
FLAGGED_SHARES = (0.0, 0.01, 0.02, 0.03, 0.05, 0.10)
SHEET_PROBE = "sheet on a table (probe)"


def textbook_input(picture: np.ndarray) -> np.ndarray:
    """The textbook pipeline: Otsu threshold, polarity from the picture's border, the largest
    component, its longer side fitted to 20 px, centred by centre of mass on 28×28."""
    gray = picture if picture.ndim == 2 else cv2.cvtColor(picture, cv2.COLOR_BGR2GRAY)
    _, mask = cv2.threshold(gray, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    border = np.concatenate((mask[0], mask[-1], mask[:, 0], mask[:, -1]))
    if border.mean() > 127:  # the ground is light: the ink is dark
        mask, gray = 255 - mask, 255 - gray
    n, labels, stats, _ = cv2.connectedComponentsWithStats(mask)
    if n < 2:
        return np.zeros((28, 28, 1), np.float32)
    i = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
    x, y, w, h = stats[i, :4]
    digit = (gray[y : y + h, x : x + w] * (labels[y : y + h, x : x + w] == i)).astype(np.float32)
    scale = 20 / max(w, h)
    digit = cv2.resize(digit, (max(1, round(w * scale)), max(1, round(h * scale))),
                       interpolation=cv2.INTER_AREA)
    canvas = np.zeros((28, 28), np.float32)
    top, left = (28 - digit.shape[0]) // 2, (28 - digit.shape[1]) // 2
    canvas[top : top + digit.shape[0], left : left + digit.shape[1]] = digit / max(digit.max(), 1)
    cy, cx = (np.indices(canvas.shape) * canvas).reshape(2, -1).sum(1) / max(canvas.sum(), 1e-6)
    shift = np.float32([[1, 0, 13.5 - cx], [0, 1, 13.5 - cy]])
    return cv2.warpAffine(canvas, shift, (28, 28))[..., None]


@dataclass
class SetResult:
    device: Score = field(default_factory=Score)
    textbook: Score = field(default_factory=Score)
    # One entry per single-digit picture read as one digit: (confidence, correct, uncertain).
    confidences: list[tuple[float, bool, bool]] = field(default_factory=list)
    singles: int = 0  # pictures of one digit (the flagging figures are about these)
    preprocess_ms: list[float] = field(default_factory=list)
    inference_ms: list[float] = field(default_factory=list)


def run_set(reader: DigitReader, samples: list[tuple[str, np.ndarray, str]]) -> SetResult:
    result = SetResult()
    labels = [int(label) for label in reader.model.sidecar.labels]
    for name, picture, truth in samples:
        reading = reader.read(picture)
        read = reading.number or ""
        result.device.record(name, truth, read)
        result.preprocess_ms.append(reading.timings_ms["preprocess"])
        if reading.digits:
            result.inference_ms.append(reading.timings_ms["inference"])
        result.singles += len(truth) == 1
        if len(truth) == 1 and reading.confidence is not None:
            result.confidences.append((reading.confidence, read == truth, bool(reading.uncertain)))
        if truth:
            probs = reader.model.predict(textbook_input(picture)[None])[0]
            result.textbook.record(name, truth, str(labels[int(np.argmax(probs))]))
    return result


def _pct(correct: int, total: int) -> str:
    return f"{100 * correct / total:.1f}% ({correct}/{total})" if total else "–"


def flagged_curve(result: SetResult, digits: int) -> list[tuple[float, float]]:
    """(share of the set flagged, accuracy of the rest) when the least confident readings are
    flagged; a picture read as nothing counts as wrong and unflagged, one read as several
    digits as wrong, ranked by its reading's confidence."""
    if not result.confidences:
        return []
    ordered = sorted(result.confidences)
    unread = digits - len(ordered)
    curve = []
    for share in FLAGGED_SHARES:
        flagged = min(len(ordered), round(share * digits))
        kept = ordered[flagged:]
        curve.append((flagged / digits, sum(ok for _, ok, _ in kept) / (len(kept) + unread)))
    return curve


def operating_point(result: SetResult, digits: int) -> tuple[float, float]:
    """(share flagged, accuracy of the readings not flagged) at the model's own threshold."""
    kept = [ok for _, ok, uncertain in result.confidences if not uncertain]
    unread = digits - len(result.confidences)  # read as nothing: unflagged mistakes
    flagged = len(result.confidences) - len(kept)
    return flagged / digits, sum(kept) / max(1, len(kept) + unread)


def per_digit_rows(result: SetResult) -> list[str]:
    rows = ["| digit | device path | textbook pipeline |", "|---|---|---|"]
    for label in sorted(result.device.per_digit):
        rows.append(f"| {label} | {_pct(*result.device.per_digit[label])} | "
                    f"{_pct(*result.textbook.per_digit.get(label, [0, 0]))} |")
    return rows


def _ms(values: list[float]) -> str:
    if not values:
        return "–"
    ordered = sorted(values)
    return f"{statistics.median(values):.2f} ms (p90 {ordered[int(0.9 * (len(ordered) - 1))]:.2f})"


def generated_sets(mnist: Path, per_family: int, digits: str,
                   draw: int) -> dict[str, list[tuple[str, np.ndarray, str]]]:
    """The picture families, the lifted-pen probe, the camera-like set and the sheet-on-a-table
    probe, made from MNIST's test or validation digits (draw 0, or a further draw of other
    digits and scenes)."""
    sets = dict(picture_families(mnist, per_family, digits=digits, draw=draw))
    sets["lifted pen (probe)"] = lifted_pen_set(mnist, per_family, digits=digits, draw=draw)
    frames = camera_like_set(mnist, seed=draw, digits=digits)
    sets["camera-like set"] = [(f"frame {i} ({f.kind})", f.image, f.truth)
                               for i, f in enumerate(frames)]
    sheets = sheet_on_table_set(mnist, digits=digits, draw=draw)
    sets[SHEET_PROBE] = [(f"sheet {i} ({f.kind})", f.image, f.truth) for i, f in enumerate(sheets)]
    return sets


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=Path, default=REPO / "models" / "digitnet_int8.tflite",
                        help="the .tflite model, its .json sidecar beside it")
    parser.add_argument("--mnist", type=Path, help="MNIST folder (default: $MNIST_DATA_DIR, "
                        "then ../shared/data/mnist)",
                        default=Path(os.environ.get("MNIST_DATA_DIR", SHARED / "mnist")))
    parser.add_argument("--handwriting", type=Path, default=SHARED / "handwriting_dev",
                        help="folder of real scans with LABELS.csv")
    parser.add_argument("--photos", type=Path, default=SHARED / "photos_dev",
                        help="folder of real photos with LABELS.csv")
    parser.add_argument("--optdigits", type=Path, help="real handwriting from outside this "
                        f"repository, measured only: {optdigits.WHERE}")
    parser.add_argument("--per-family", type=positive_int, default=500,
                        help="MNIST test digits per picture family (default %(default)s)")
    parser.add_argument("--digits", choices=("test", "validation"), default="test",
                        help="MNIST digits the generated sets are made from: test (the figures "
                        "to report, with the dev sets) or validation (to choose between two ways "
                        "of reading: no dev sets, and the report goes to "
                        "bench/out/DEVICE_ACCURACY_validation.md unless --out says otherwise)")
    parser.add_argument("--draw", type=int, default=0,
                        help="which draw of digits the generated sets take: 0 (default) is the "
                        "one every report reads; 1, 2, … take other digits (and other "
                        "camera-like scenes), to settle a choice the usual draw cannot")
    parser.add_argument("--threads", type=positive_int, default=2, help="interpreter threads")
    parser.add_argument("--out", type=Path, help="the report to write (default: "
                        "docs/DEVICE_ACCURACY.md)")
    return parser


def _pictures(args: argparse.Namespace, parser: argparse.ArgumentParser,
              choosing: bool) -> dict[str, list[tuple[str, np.ndarray, str]]]:
    """Every set the run reads, or a one-line error for a draw or a file that cannot be had:
    all before the model loads, so a mistake costs no reading."""
    try:
        sets = generated_sets(args.mnist, args.per_family, args.digits, args.draw)
    except DataError as error:  # before ValueError: MNIST that cannot be read says which
        parser.error(str(error))
    except ValueError as error:
        parser.error(f"--draw {args.draw} with --per-family {args.per_family}: {error}")
    if not choosing:  # the development sets are looked at, never chosen on
        for name, folder, flag in (("handwriting_dev", args.handwriting, "--handwriting"),
                                   ("photos_dev", args.photos, "--photos")):
            try:
                sets[name] = labelled_pictures(folder)
            except OSError as error:
                parser.error(f"{flag} {folder}: {error.strerror or error}")
    if args.optdigits:
        if choosing:
            parser.error("--optdigits is measured only: leave it out of a --digits validation run")
        try:
            sets[optdigits.NAME] = optdigits.read(args.optdigits)
        except (OSError, ValueError, EOFError) as error:
            parser.error(f"--optdigits {args.optdigits}: {error}")
    return sets


def first_look_note(model: DigitModel) -> str:
    """The header's word on the model's first look, when one was loaded."""
    look = model.sidecar.first_look
    if model.first_look is None or look is None:
        return ""
    return (f"; its first look `{look.model_file}` reads each digit first and is final at "
            f"confidence ≥ {look.accept_at} (`python -m convert first-look`)")


def main() -> int:
    parser = _parser()
    args = parser.parse_args()
    choosing = args.digits == "validation"
    if args.out is None:
        args.out = (REPO / "bench" / "out" / "DEVICE_ACCURACY_validation.md" if choosing
                    else REPO / "docs" / "DEVICE_ACCURACY.md")
    try:
        args.out.parent.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        parser.error(f"--out {args.out}: cannot make its folder ({error.strerror or error})")

    started = time.perf_counter()
    sets = _pictures(args, parser, choosing)
    try:
        model = DigitModel(args.model, threads=args.threads)
    except ModelError as error:
        parser.error(str(error))
    reader = DigitReader(model)
    dev_sets = [name for name in ("handwriting_dev", "photos_dev", optdigits.NAME) if name in sets]
    reader.read(sets["camera-like set"][0][1])  # warm-up: first calls pay for allocation
    results = {name: run_set(reader, samples) for name, samples in sets.items()}
    elapsed = time.perf_counter() - started

    camera, sheets = results["camera-like set"], results[SHEET_PROBE]
    shown = model.path.relative_to(REPO) if model.path.is_relative_to(REPO) else model.path
    threshold = reader.uncertain_below
    lines = [
        "# Device accuracy: from a picture to a digit"
        + (" (validation digits, for choosing)" if choosing else ""),
        "",
        "Written by `bench/device_accuracy.py` (re-run it after changing the model or the "
        "preprocessing). Device path = `device.reader.DigitReader`: `device/preprocess` plus "
        "the model through LiteRT, exactly what the Pi runs. Beside it, in the same run and "
        "with the same model, a textbook pipeline: Otsu threshold, polarity from the picture's "
        "border, the largest component, 20 px box, centre of mass.",
        "",
        f"- model: `{shown}` (sha256 `{model.sha256[:16]}…`), runtime `{model.runtime}`, "
        f"{args.threads} threads; readings below confidence {threshold:.3f} are flagged "
        "`uncertain` (the sidecar's threshold, chosen on validation digits)"
        + first_look_note(model),
        f"- measured {datetime.now(UTC):%Y-%m-%d %H:%M} UTC on {platform.machine()}, "
        f"{os.cpu_count()} CPUs; whole run {elapsed:.0f} s",
        "",
        "## Every set",
        "",
        "Digits read in place: a picture read with the wrong number of digits scores all its "
        "digits wrong. The picture families are each made from the same "
        f"{args.per_family} MNIST {args.digits} digits (`train/pictures.py`"
        + (f"; draw {args.draw}, digits no draw before it used" if args.draw else "")
        + "); the lifted-pen "
        f"probe is a separate draw of {args.per_family}, each cut once by a gap of about a "
        "stroke's width, as a pen lifted mid-stroke leaves it (`tests/camera_like.py`; nothing "
        f"trains on it); the camera-like set and the sheet-on-a-table probe (a sheet lying on a "
        "table, a pen, pencil or coin beside it or across its edge, a third of the sheets "
        f"blank) are made from MNIST {args.digits} digits too."
        + (f" {optdigits.NAME}: real handwriting from outside this repository, the "
           f"{len(sets[optdigits.NAME]):,} test digits of UCI's optdigits (13 writers, NIST's "
           "form scans counted down to 8×8; `--optdigits`), each enlarged ×16 smoothly, only "
           "measured."
           if optdigits.NAME in sets else ""),
        "",
        "| set | device path | textbook pipeline | flagged uncertain* | accuracy not flagged* |",
        "|---|---|---|---|---|",
    ]
    for name, result in results.items():
        digits = result.device.digits
        flagged, kept_accuracy = operating_point(result, result.singles)
        lines.append(
            f"| {name} | **{_pct(result.device.digits_correct, digits)}** | "
            f"{_pct(result.textbook.digits_correct, result.textbook.digits)} | "
            f"{flagged:.1%} | {kept_accuracy:.2%} |")
    lines += [
        "",
        "\\* of the pictures of one digit; a picture read as nothing counts as an unflagged "
        "mistake, one read as several digits as a mistake, flagged by its reading's confidence.",
        "",
        f"Camera-like set: {camera.device.empty} frames without a digit, "
        f"**{camera.device.empty_read_as_digit}** of them read as a digit; frames of several "
        f"digits read exactly, in order: {_pct(camera.device.multi_correct, camera.device.multi)}.",
        "",
        f"Sheet-on-a-table probe: {sheets.device.empty} blank sheets, "
        f"**{sheets.device.empty_read_as_digit}** of them read as a digit.",
        "",
        "## Flagging the least confident readings",
        "",
        "Accuracy of the readings left when the least confident share of each set is flagged "
        "(a picture read as nothing counts as an unflagged mistake, one read as several digits as "
        "a mistake ranked by its reading's confidence). The "
        "model's own threshold is fixed in its sidecar; this curve shows what other thresholds "
        "would give.",
        "",
        "| set | " + " | ".join(f"{s:.0%} flagged" for s in FLAGGED_SHARES) + " |",
        "|---|" + "---|" * len(FLAGGED_SHARES),
    ]
    for name in (*dev_sets, "camera-like set"):
        result = results[name]
        curve = flagged_curve(result, result.singles)
        lines.append(f"| {name} | " + " | ".join(f"{acc:.2%}" for _, acc in curve) + " |")
    for name in dev_sets:
        lines += ["", f"## {name}, per digit", "", *per_digit_rows(results[name])]
    lines += [
        "",
        "## Speed (median per picture, this machine)",
        "",
        "| set | preprocessing | inference (all digits of a picture in one batch) |",
        "|---|---|---|",
        *(f"| {name} | {_ms(r.preprocess_ms)} | {_ms(r.inference_ms)} |"
          for name, r in results.items()),
        "",
        "## Misread by the device path",
        "",
    ]
    for name, result in results.items():
        failures = "; ".join(f"{n}: {t or '(none)'} → {r or '(none)'}"
                             for n, t, r in result.device.failures[:40])
        more = len(result.device.failures) - 40
        lines.append(f"- {name}: {failures or 'none'}" + (f"; and {more} more" if more > 0 else ""))
    lines.append("")
    args.out.write_text("\n".join(lines), encoding="utf-8")
    print("; ".join(f"{name} {r.device.accuracy:.4f}" for name, r in results.items()))
    print(f"empty frames read as a digit {camera.device.empty_read_as_digit}; wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
