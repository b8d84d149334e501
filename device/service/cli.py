"""`python -m device serve`: flags over DIGITS_* variables over the env file over defaults."""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from pathlib import Path
from typing import TextIO

from device.service.settings import ServiceSettings, load_settings

EPILOG = """\
Every flag has an environment variable (and env-file line) of the same name:
DIGITS_HOST, DIGITS_PORT, DIGITS_MODEL, DIGITS_CAMERA, DIGITS_ROI, DIGITS_THREADS,
DIGITS_MAX_UPLOAD_BYTES, DIGITS_MAX_IMAGE_PIXELS, DIGITS_TOKEN, DIGITS_LOG_LEVEL, DIGITS_PREVIEW,
DIGITS_PREVIEW_FPS, DIGITS_CAPTURE_TIMEOUT_S, DIGITS_CAMERA_RETRY_S, DIGITS_WATCH,
DIGITS_WATCH_FPS, DIGITS_WATCH_STABLE_FRAMES, DIGITS_WATCH_MIN_CONFIDENCE,
DIGITS_STREAM_HEARTBEAT_S, DIGITS_MQTT_URL, DIGITS_MQTT_CA, DIGITS_MQTT_PREFIX,
DIGITS_MQTT_NODE_ID, DIGITS_MQTT_DISCOVERY, DIGITS_MQTT_DISCOVERY_PREFIX; the env file itself is
--env-file or DIGITS_ENV_FILE. A flag wins over the environment, which wins over the env file.
Put a broker password in the env file rather than in --mqtt-url: a command line is visible to
every user.
"""


def add_serve_arguments(parser: argparse.ArgumentParser) -> None:
    """The serve flags; each defaults to None so that an unset flag leaves the env in charge."""
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.epilog = EPILOG
    add = parser.add_argument
    add("--env-file", type=Path, help="read DIGITS_* settings from this file")
    add("--host", help="address to listen on (default 127.0.0.1; 0.0.0.0 for the network)")
    add("--port", type=int, help="TCP port (default 8000)")
    add("--model", type=Path, help="the .tflite model, its .json sidecar beside it")
    add(
        "--camera",
        help="auto (default) | picamera2 | opencv:0 | opencv:/path/video.mp4 | opencv:rtsp://... "
        "| file:/path/image_or_dir | none (uploads only)",
    )
    add(
        "--roi", help="region of interest x,y,w,h as fractions of the frame, e.g. 0.25,0.25,0.5,0.5"
    )
    add("--threads", type=int, help="interpreter threads (default 1)")
    add("--max-upload-bytes", type=int, help="largest accepted upload (default 8 MiB)")
    add("--max-image-pixels", type=int, help="largest accepted width×height (default 40 MP)")
    add("--token", help="require 'Authorization: Bearer TOKEN' on all but /healthz")
    add("--log-level", choices=["debug", "info", "warning", "error"],
        help="the least severe log line written (default info)")
    add(
        "--preview",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="serve the live preview page at / (default on)",
    )
    add("--preview-fps", type=float, help="frame-rate cap of the preview stream (default 5)")
    add("--capture-timeout-s", type=float, help="a camera read slower than this is hung (5)")
    add("--camera-retry-s", type=float,
        help="first pause before reopening a failed camera, backing off to 5x that (2)")
    add(
        "--watch",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="read the camera continuously and keep a stable reading for GET /reading and "
        "/readings/stream (default off; on by itself with --mqtt-url)",
    )
    add("--watch-fps", type=float, help="frames per second the watch reads (default 2)")
    add(
        "--watch-stable-frames",
        type=int,
        help="consecutive agreeing, certain frames before a reading counts (default 3)",
    )
    add(
        "--watch-min-confidence",
        type=float,
        help="also treat a frame whose weakest digit is below this as uncertain (default 0: "
        "the model's calibrated flag alone decides)",
    )
    add("--stream-heartbeat-s", type=float, help="heartbeat of /readings/stream (default 15)")
    add(
        "--mqtt-url",
        help="publish to this MQTT broker: mqtt://user:password@host:1883, or mqtts://... for "
        "TLS (implies --watch)",
    )
    add(
        "--mqtt-ca",
        type=Path,
        help="with mqtts://, trust the broker certificates this CA file (PEM) signed instead of "
        "the system's CA certificates; for a self-signed broker, its certificate",
    )
    add("--mqtt-prefix", help="topic prefix (default digits): PREFIX/NODE_ID/state, ...")
    add("--mqtt-node-id", help="this device's name in topics (default: the hostname)")
    add(
        "--mqtt-discovery",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="announce the sensors to Home Assistant (default on)",
    )
    add("--mqtt-discovery-prefix", help="Home Assistant's discovery prefix (homeassistant)")


def _fail(message: str, stream: TextIO | None = None) -> int:
    # One line: this is what a Pi owner reads in `journalctl -u pi-digits`.
    print(f"python -m device serve: error: {message}", file=stream or sys.stderr)
    return 2


def _settings_from(args: argparse.Namespace) -> ServiceSettings:
    from pydantic import ValidationError

    not_settings = {"env_file", "command", "func", "command_parser"}
    flags = {k: v for k, v in vars(args).items() if k not in not_settings}
    try:
        return load_settings(args.env_file, **flags)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'/'.join(str(p) for p in err['loc']) or 'settings'}: "
            f"{err['msg'].removeprefix('Value error, ')}"
            for err in exc.errors()
        )
        raise ValueError(f"invalid setting ({problems}); see --help") from None


def run_serve(args: argparse.Namespace) -> int:
    """Load the settings and the model, then serve; returns the process exit code."""
    try:
        settings = _settings_from(args)
    except (ValueError, FileNotFoundError) as exc:
        return _fail(str(exc))
    # OpenCV reads these once at import: its own decoder then also refuses oversized images,
    # a second guard behind the header check in uploads.py.
    os.environ.setdefault("OPENCV_IO_MAX_IMAGE_PIXELS", str(settings.max_image_pixels))
    from device.native_output import native_output_as_logs, quiet_opencv_logging

    quiet_opencv_logging()  # a damaged upload, every failed probe of a missing USB camera

    # The log is one JSON object per line: what native code prints (LiteRT, libcamera) and any
    # stray Python output go through logging too.
    with native_output_as_logs((1, 2)) as real_stderr:
        return _serve(settings, real_stderr)


def _serve(settings: ServiceSettings, real_stderr: TextIO) -> int:
    from device.service.logs import configure_logging
    from device.sidecar import ModelError

    configure_logging(settings.log_level, real_stderr)
    from device.service.memory import return_big_buffers_to_os

    return_big_buffers_to_os()  # before LiteRT and the worker threads start
    from device.service.context import build_context
    from device.service.server import ListenError, run

    try:
        context = build_context(settings)
    except ModelError as exc:
        return _fail(str(exc), real_stderr)
    try:
        with contextlib.suppress(KeyboardInterrupt):
            run(settings, context)
    except ListenError as exc:
        return _fail(str(exc), real_stderr)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m device serve", description="Serve digit readings over HTTP."
    )
    add_serve_arguments(parser)
    return run_serve(parser.parse_args(argv))
