"""`python -m device COMMAND`: read digits from image files or from a camera, or serve them.

    python -m device predict IMAGE_OR_FOLDER... [--json] [--model PATH] [--roi x,y,w,h]
    python -m device capture --out DIR [--camera SPEC] [--json] [--model PATH] [--roi x,y,w,h]
    python -m device serve [--host H] [--port P] [--camera SPEC] ...

Each command is one subparser whose `func` default runs it, so adding a command is a few lines.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from device.camera_specs import SPEC_FORMS

if TYPE_CHECKING:
    from device.reader import DigitReader

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


def _not_empty(text: str, what: str) -> str:
    """A path named on the command line; not an empty one, which Path would take for the
    current folder (a shell variable that expanded to nothing: `predict "$DIR"`)."""
    if not text:
        raise argparse.ArgumentTypeError(
            f"'' is an empty path: name {what} ('.' for the current one)")
    return text


def image_name(text: str) -> str:
    """An image or folder to read."""
    return _not_empty(text, "an image file or a folder")


def out_folder(text: str) -> Path:
    """The folder capture writes into."""
    return Path(_not_empty(text, "a folder"))


def thread_count(text: str) -> int:
    from device.runtime import MAX_THREADS  # numpy only: --help stays quick

    try:
        value = int(text)
    except ValueError:
        value = 0
    if not 1 <= value <= MAX_THREADS:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number from 1 to {MAX_THREADS}")
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
    parser.add_argument("--threads", type=thread_count, default=2,
                        help="interpreter threads (default %(default)s)")


def _reader(args: argparse.Namespace) -> DigitReader:
    # Imported here: --help and argument errors should not wait for LiteRT and OpenCV.
    from device.reader import DigitReader
    from device.runtime import DigitModel

    return DigitReader(DigitModel(args.model, threads=args.threads), roi=args.roi)


def _text_line(label: str, answer: dict[str, Any]) -> str:
    """One line for a person: what was read, and where the time went."""
    timing = ", ".join(f"{stage} {ms:.1f} ms" for stage, ms in answer["timings_ms"].items())
    if answer["digit"] is None:
        return f"{label}: no digit ({answer['reason']}); {timing}"
    flag = ", uncertain" if answer["uncertain"] else ""
    found = f"digit {answer['digit']} (confidence {answer['confidence']:.3f}{flag})"
    if len(answer["digits"]) > 1:
        found += f", number {answer['number']}"
    return f"{label}: {found}; {timing}"


class Unreadable(NamedTuple):
    """Why a file named on the command line gave no picture: `kind` for `--json`, `detail` for
    a person."""

    # no_such_file, not_a_file (a pipe, a device), no_images (a folder without any), or
    # device.picture's reason: not_an_image, corrupt_image, unsupported_image_format,
    # image_too_large, unreadable_file; or the reader's unusable_image (a picture too small or
    # too thin to hold a digit)
    kind: str
    detail: str


def image_files(names: list[str]) -> list[tuple[str, Unreadable | None]]:
    """Each name as (file, why it cannot be read or None); a folder stands for its images."""
    from device.camera_specs import images_in, no_image_at, no_images_in

    found: list[tuple[str, Unreadable | None]] = []
    for name in names:
        path = Path(name)
        if path.is_dir():
            images = images_in(path)
            found += [(str(image), None) for image in images] or [
                (name, Unreadable("no_images", no_images_in(name)))]
        elif path.is_file():
            found.append((name, None))
        else:
            kind = "not_a_file" if path.exists() else "no_such_file"
            found.append((name, Unreadable(kind, no_image_at(path))))
    return found


def run_predict(args: argparse.Namespace) -> int:
    from device.answer import reading_answer

    reader = _reader(args)
    files = image_files(args.images)
    failures = 0
    for name, listed_problem in files:
        started = time.perf_counter()
        picture, problem = (
            (None, listed_problem) if listed_problem else read_image(name, reader.picture_side))
        if problem is None:
            decoded = time.perf_counter()
            try:
                reading = reader.read_picture(picture)
            except ValueError as exc:  # the reader's word for a picture it cannot use
                problem = Unreadable("unusable_image", str(exc))
        if problem is not None:
            failures += 1
            print(f"{PROG} predict: error: {name}: {problem.detail}", file=sys.stderr)
            if args.json:
                print(json.dumps({"file": name, "error": problem.kind, "detail": problem.detail}),
                      flush=True)
            continue
        answer = reading_answer(
            reading, source="file", file=name, model=reader.model,
            capture_ms=(decoded - started) * 1000.0,
            total_ms=(time.perf_counter() - started) * 1000.0,
        )
        print(json.dumps(answer) if args.json else _text_line(name, answer), flush=True)
    if failures:
        print(f"{PROG} predict: {failures} of {len(files)} file(s) could not be read",
              file=sys.stderr)
    return 1 if failures else 0


def read_image(name: str, least_side: int | None = None) -> tuple[Any, Unreadable | None]:
    """(the picture, decoded no larger than ``least_side`` needs: `device.picture.Decoded`,
    None) or (None, why it cannot be read)."""
    from device.picture import PictureError, read_picture_for_reading

    try:
        return read_picture_for_reading(name, least_side), None
    except PictureError as exc:
        return None, Unreadable(exc.code, exc.detail)


def run_capture(args: argparse.Namespace) -> int:
    import cv2
    import numpy as np

    from device.answer import reading_answer
    from device.camera_specs import parse_camera_spec
    from device.cameras import CameraError, UnreadablePictureError, open_camera

    try:
        parse_camera_spec(args.camera)
    except ValueError as exc:  # it says which spellings would work
        raise CommandError(str(exc)) from None
    reader = _reader(args)
    try:
        camera = open_camera(args.camera, reader.picture_side)
        try:
            started = time.perf_counter()
            frame = camera.read()
            captured = time.perf_counter()
        finally:
            camera.close()
    except UnreadablePictureError as exc:  # another camera is no fix for a damaged picture
        raise CommandError(str(exc)) from None
    except CameraError as exc:
        raise CommandError(f"{exc}; choose another with --camera: {SPEC_FORMS}") from None
    try:
        reading = reader.read(frame)
    except ValueError as exc:  # the reader's word for a frame it cannot use
        raise CommandError(f"cannot read the {camera.name} frame: {exc}") from None
    answer = reading_answer(reading, source="camera", model=reader.model,
                            capture_ms=(captured - started) * 1000.0,
                            total_ms=(time.perf_counter() - started) * 1000.0)
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
    print(json.dumps(answer) if args.json else _text_line(f"{camera.name} frame", answer),
          flush=True)  # before the stderr line below, also when both go to one pipe
    print(f"saved {', '.join(saved)} to {out}", file=sys.stderr)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=PROG, description="Read handwritten digits.")
    commands = parser.add_subparsers(dest="command", required=True,
                                     metavar="{predict,capture,serve}")

    predict = commands.add_parser(
        "predict", help="read the digits in image files", description="Read the digits in "
        "image files (or every image in a folder): one line, or one JSON object, per image.")
    predict.add_argument("images", nargs="+", metavar="IMAGE", type=image_name,
                         help="image files (PNG, JPEG, BMP, WebP, TIFF, PNM) or folders of them")
    predict.add_argument("--json", action="store_true",
                         help="one JSON object per image, the same answer as POST /predict")
    _add_model_options(predict)
    predict.set_defaults(func=run_predict, command_parser=predict)

    capture = commands.add_parser(
        "capture", help="grab one camera frame; save it, its threshold mask and model inputs",
        description="Grab one camera frame, read it, and save what the model saw: the frame, "
        "the searched area, the threshold mask, the boxes and each 28x28 input.")
    capture.add_argument("--out", type=out_folder, required=True, help="folder for the PNG files")
    capture.add_argument("--camera", default="auto",
                         help=f"{SPEC_FORMS} (default %(default)s)")
    capture.add_argument("--json", action="store_true",
                         help="print the reading as JSON, the same answer as GET /predict")
    _add_model_options(capture)
    capture.set_defaults(func=run_capture, command_parser=capture)

    from device.service.cli import add_serve_arguments, run_serve

    serve = commands.add_parser("serve", help="serve readings over HTTP (what the Pi runs)",
                                description="Serve readings over HTTP (what the Pi runs).")
    add_serve_arguments(serve)
    serve.set_defaults(func=run_serve, command_parser=serve)
    return parser


def parse_arguments(argv: list[str] | None = None) -> argparse.Namespace:
    """The arguments; a wrong flag is reported with the usage of the command it was given to."""
    args, extras = build_parser().parse_known_args(argv)
    if extras:
        args.command_parser.error(f"unrecognized arguments: {' '.join(extras)}")
    return args


@contextlib.contextmanager
def _native_chatter_off_the_terminal() -> Any:
    """Native code's lines go through logging, where only those it marks as errors are shown:
    LiteRT's C++ "INFO: Created TensorFlow Lite XNNPACK delegate" line is chatter, and the
    codecs' warnings about a bad input (libpng's "PNG input buffer is incomplete", FFmpeg's
    "[mjpeg @ 0x...] overread 8") or OpenCV's about a camera index that is not there repeat
    what the command's own one-line error says (or, when a folder's next picture read, are
    not worth saying)."""
    from device.native_output import log as native_log
    from device.native_output import native_output_as_logs, quiet_opencv_logging

    quiet_opencv_logging()
    level = native_log.level
    native_log.setLevel(logging.ERROR)
    try:
        with native_output_as_logs((2,)) as real_stderr:
            own = sys.stderr is sys.__stderr__  # not when a caller (a test) captures it already
            with contextlib.redirect_stderr(real_stderr) if own else contextlib.nullcontext():
                yield
    finally:  # a caller in the same process (a test) keeps its own
        native_log.setLevel(level)


def main(argv: list[str] | None = None) -> int:
    # Ctrl-C ends any command quietly with the shell's 130, also while the imports or the
    # model load before `serve` listens (seconds on a Pi), which printed a traceback.
    try:
        return _run(parse_arguments(argv))
    except KeyboardInterrupt:
        return 130


def _run(args: argparse.Namespace) -> int:
    if args.command == "serve":  # its own logging: JSON lines
        return args.func(args)
    from device.sidecar import ModelError

    with _native_chatter_off_the_terminal():
        logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s",
                            stream=sys.stderr)
        try:
            return args.func(args)
        except (CommandError, ModelError) as exc:
            print(f"{PROG} {args.command}: error: {exc}", file=sys.stderr)
            return 1


if __name__ == "__main__":
    raise SystemExit(main())
