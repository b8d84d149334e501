"""`python -m device COMMAND`: read digits from image files or from a camera.

    python -m device predict IMAGE... [--json] [--model PATH] [--roi x,y,w,h] [--threads N]
    python -m device capture --out DIR [--camera SPEC] [--model PATH] [--roi x,y,w,h]

Each command is one subparser whose ``func`` default runs it, so adding a command is a few lines.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from device.reader import DigitReader, Reading

PROG = "python -m device"
# The shipped model, found relative to this package so any working directory works.
DEFAULT_MODEL = Path(__file__).resolve().parent.parent / "models" / "digitnet_int8.tflite"


class CommandError(Exception):
    """A user-facing failure: printed as one line, no traceback."""


def parse_roi(text: str) -> tuple[float, float, float, float]:
    """``x,y,w,h`` as fractions of the frame, e.g. ``0.25,0.25,0.5,0.5``."""
    parts = text.replace(" ", "").split(",")
    try:
        x, y, w, h = (float(p) for p in parts)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not four comma-separated fractions x,y,w,h, e.g. 0.25,0.25,0.5,0.5"
        ) from None
    if not (0 <= x < 1 and 0 <= y < 1 and 0 < w <= 1 and 0 < h <= 1 and x + w <= 1 and y + h <= 1):
        raise argparse.ArgumentTypeError(
            f"{text!r}: x,y,w,h must be fractions of the frame with x+w <= 1 and y+h <= 1"
        )
    return x, y, w, h


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of at least 1")
    return value


def _add_model_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--model", type=Path, default=DEFAULT_MODEL,
        help=f"the .tflite model, its .json sidecar beside it (default: {DEFAULT_MODEL})",
    )
    parser.add_argument(
        "--roi", type=parse_roi, help="only search x,y,w,h (fractions of the frame), e.g. "
        "0.25,0.25,0.5,0.5",
    )
    parser.add_argument("--threads", type=positive_int, default=2, help="interpreter threads")


def _reader(args: argparse.Namespace) -> DigitReader:
    # Imported here: --help and argument errors should not wait for LiteRT and OpenCV.
    from device.reader import DigitReader
    from device.runtime import DigitModel

    return DigitReader(DigitModel(args.model, threads=args.threads), roi=args.roi)


def reading_record(name: str, reading: Reading) -> dict:
    """The JSON object for one image (also what the text line is made from)."""
    return {
        "file": name,
        "digit": reading.digit,
        "confidence": None if reading.confidence is None else round(reading.confidence, 4),
        "uncertain": reading.uncertain,
        "number": reading.number,
        "digits": [
            {"digit": d.digit, "confidence": round(d.confidence, 4), "uncertain": d.uncertain,
             "box": list(d.box)}
            for d in reading.digits
        ],
        "reason": reading.reason,
        "timings_ms": {k: round(v, 2) for k, v in reading.timings_ms.items()},
    }


def _text_line(record: dict) -> str:
    timing = ", ".join(f"{k} {v:.1f} ms" for k, v in record["timings_ms"].items())
    if record["digit"] is None:
        return f"{record['file']}: no digit ({record['reason']}); {timing}"
    found = f"digit {record['digit']} (confidence {record['confidence']:.3f})"
    if len(record["digits"]) > 1:
        found += f", number {record['number']}"
    return f"{record['file']}: {found}; {timing}"


def run_predict(args: argparse.Namespace) -> int:
    import cv2

    reader = _reader(args)
    failures = 0
    for name in args.images:
        frame = cv2.imread(name, cv2.IMREAD_COLOR) if Path(name).is_file() else None
        if frame is None:
            failures += 1
            why = "not a readable image" if Path(name).is_file() else "no such file"
            print(f"{PROG} predict: error: {name}: {why}", file=sys.stderr)
            if args.json:
                print(json.dumps({"file": name, "digit": None, "confidence": None,
                                  "number": None, "digits": [], "reason": None, "error": why}))
            continue
        record = reading_record(name, reader.read(frame))
        print(json.dumps(record) if args.json else _text_line(record), flush=True)
    if failures:
        print(f"{PROG} predict: {failures} of {len(args.images)} file(s) could not be read",
              file=sys.stderr)
    return 1 if failures else 0


def run_capture(args: argparse.Namespace) -> int:
    import cv2
    import numpy as np

    from device.cameras import CameraError, open_camera

    reader = _reader(args)
    try:
        camera = open_camera(args.camera)
        try:
            frame = camera.read()
        finally:
            camera.close()
    except CameraError as exc:
        raise CommandError(str(exc)) from None
    reading = reader.read(frame)
    out: Path = args.out
    try:
        out.mkdir(parents=True, exist_ok=True)
        saved = {"frame.png": frame, "searched.png": reading.extraction.gray,
                 "mask.png": reading.extraction.mask}
        boxed = frame.copy() if frame.ndim == 3 else cv2.cvtColor(frame, cv2.COLOR_GRAY2BGR)
        for d in reading.digits:
            x, y, w, h = d.box
            cv2.rectangle(boxed, (x, y), (x + w, y + h), (0, 0, 255), 2)
            cv2.putText(boxed, str(d.digit), (x, max(12, y - 4)), cv2.FONT_HERSHEY_SIMPLEX,
                        0.8, (0, 0, 255), 2)
        saved["boxes.png"] = boxed
        for i, candidate in enumerate(reading.extraction.candidates):
            pixels = (candidate.input[..., 0] * 255).round().astype(np.uint8)
            # 28×28 is too small to look at: each model pixel becomes a 10×10 block.
            saved[f"input_{i}.png"] = cv2.resize(pixels, (280, 280),
                                                 interpolation=cv2.INTER_NEAREST)
        for name, image in saved.items():
            if not cv2.imwrite(str(out / name), image):
                raise OSError(f"cannot write {out / name}")
    except OSError as exc:
        raise CommandError(f"cannot save to {out}: {exc}") from None
    record = reading_record(f"{camera.name} frame", reading)
    print(json.dumps(record) if args.json else _text_line(record))
    print(f"saved {', '.join(saved)} to {out}", file=sys.stderr)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=PROG, description="Read handwritten digits.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    predict = commands.add_parser("predict", help="read the digits in image files")
    predict.add_argument("images", nargs="+", metavar="IMAGE", help="image files (PNG, JPEG…)")
    predict.add_argument("--json", action="store_true", help="one JSON object per image")
    _add_model_options(predict)
    predict.set_defaults(func=run_predict)

    capture = commands.add_parser(
        "capture", help="grab one camera frame; save it, its threshold mask and model inputs"
    )
    capture.add_argument("--out", type=Path, required=True, help="folder for the PNG files")
    capture.add_argument(
        "--camera", default="auto",
        help="auto | picamera2 | opencv:0 | opencv:/path/video.mp4 | opencv:rtsp://... | "
        "file:/path/image_or_dir (default: auto)",
    )
    capture.add_argument("--json", action="store_true", help="print the reading as JSON")
    _add_model_options(capture)
    capture.set_defaults(func=run_capture)

    from device.service.cli import add_serve_arguments, run_serve

    serve = commands.add_parser("serve", help="serve readings over HTTP (what the Pi runs)")
    add_serve_arguments(serve)
    serve.set_defaults(func=run_serve)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    from device.sidecar import ModelError

    try:
        return args.func(args)
    except (CommandError, ModelError) as exc:
        print(f"{PROG} {args.command}: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
