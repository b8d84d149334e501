"""What the service prints: in a run without a camera, every line on stdout and stderr is one
JSON object (OpenCV's and LiteRT's own lines included), and the hint for choosing another
camera speaks the language of how the service was started."""

from __future__ import annotations

import importlib.util
import io
import json
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from service_helpers import REPO, free_port, handwritten_png

from device.service.logs import ACCESS, configure_logging, log_request
from device.service.settings import how_to_choose_camera

RUN_S = 30
# What tells how the service was started (device.service.settings.how_to_choose_camera): a
# test run by `make test` has MAKELEVEL, and one under systemd NOTIFY_SOCKET, of its own.
LAUNCHERS = ("MAKELEVEL", "NOTIFY_SOCKET")


@pytest.mark.slow
def test_thirty_seconds_without_a_camera_are_json_lines_only(
    tmp_path: Path, digit_model_path: Path
) -> None:
    port = free_port()
    stdout, stderr = tmp_path / "stdout", tmp_path / "stderr"
    # As a newcomer starts it: the default camera (auto finds none here), default retries.
    env = {k: v for k, v in os.environ.items() if k not in LAUNCHERS}
    with stdout.open("wb") as out, stderr.open("wb") as err:
        process = subprocess.Popen(
            [sys.executable, "-m", "device", "serve", "--port", str(port),
             "--model", str(digit_model_path)],
            cwd=REPO, stdout=out, stderr=err, env=env,
        )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        started = time.monotonic()
        answered: list[int] = []
        while time.monotonic() - started < RUN_S:
            try:
                answered.append(httpx.get(base + "/predict", timeout=10).status_code)
                answered.append(httpx.get(base + "/readyz", timeout=10).status_code)
                upload = httpx.post(base + "/predict", timeout=10,
                                    files={"file": ("d.png", handwritten_png(3))})
                answered.append(upload.status_code)
            except httpx.TransportError:
                pass  # not listening yet
            time.sleep(1.0)
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(30) == 0
    assert {503, 200} <= set(answered)  # no camera, uploads read
    lines = stdout.read_text().splitlines() + stderr.read_text().splitlines()
    records = []
    for line in lines:
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            pytest.fail(f"not a JSON line: {line!r}")
        assert isinstance(records[-1], dict), line
    messages = [record["msg"] for record in records]
    # LiteRT's C++ line, as a JSON record; OpenCV's own camera-probe errors are not printed.
    assert "Created TensorFlow Lite XNNPACK delegate for CPU." in messages
    assert not any("obsensor" in message or "VIDEOIO" in message for message in messages)
    camera = [r for r in records if r["logger"] == "device.service.camera"]
    assert len(camera) == 1  # logged once, not once per retry
    assert "no camera found" in camera[0]["msg"]
    assert "start it with --camera opencv:0 (a USB camera) or --camera none" in camera[0]["msg"]
    assert "retrying after 2 s, backing off to every 10 s" in camera[0]["msg"]
    listening = [r for r in records if r["msg"].startswith(f"listening on http://127.0.0.1:{port}")]
    assert len(listening) == 1
    # The C parser is a dependency wherever it has wheels; h11 only where it cannot install.
    parser = "httptools" if importlib.util.find_spec("httptools") else "h11"
    assert listening[0]["http_parser"] == parser


@pytest.mark.parametrize(("environment", "words"), [
    ({}, "start it with --camera opencv:0 (a USB camera) or --camera none (uploads only)"),
    ({"MAKELEVEL": "1"}, "DIGITS_CAMERA=none make serve (uploads only)"),
    ({"NOTIFY_SOCKET": "/run/systemd/notify"},
     "set DIGITS_CAMERA in /etc/pi-digits/digits.env (opencv:0 for a USB camera, none for "
     "uploads only) and run sudo systemctl restart pi-digits"),
])
def test_the_camera_hint_matches_how_the_service_was_started(
    monkeypatch: pytest.MonkeyPatch, environment: dict[str, str], words: str
) -> None:
    for name in LAUNCHERS:
        monkeypatch.delenv(name, raising=False)
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    assert words in how_to_choose_camera()


@pytest.mark.parametrize(("camera", "words"), [
    ("bogus", "unknown camera 'bogus'; use auto, picamera2, opencv:0"),
    ("file:{tmp}/clip.avi", "file: reads still images; for a video use opencv:{tmp}/clip.avi"),
])
def test_a_camera_that_cannot_work_stops_the_start_with_one_line(
    tmp_path: Path, camera: str, words: str
) -> None:
    (tmp_path / "clip.avi").write_bytes(b"RIFF")
    done = subprocess.run(
        [sys.executable, "-m", "device", "serve", "--port", str(free_port()),
         "--camera", camera.format(tmp=tmp_path)],
        cwd=REPO, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 2
    assert done.stdout == ""
    lines = done.stderr.splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("python -m device serve: error: invalid setting (camera: ")
    assert words.format(tmp=tmp_path) in lines[0]


@pytest.fixture
def restored_logging():
    """configure_logging changes the root logger: put it back after the test."""
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    yield
    root.handlers[:], level = saved
    root.setLevel(level)


def test_the_request_line_written_straight_is_the_line_logging_writes(restored_logging) -> None:
    stream = io.StringIO()
    configure_logging("info", stream)
    fields = {"method": "POST", "path": "/predict", "status": 200, "duration_ms": 1.5,
              "client": "127.0.0.1", "source": "upload", "digit": 7, "number": "7", "note": "é"}
    log_request(fields)  # straight to the handler
    logging.getLogger(ACCESS).info("request", extra=fields)  # through logging
    straight, logged = (json.loads(line) for line in stream.getvalue().splitlines())
    assert straight.pop("ts")[:10] == logged.pop("ts")[:10]
    assert straight == logged == {"level": "info", "logger": ACCESS, "msg": "request", **fields}


def test_the_request_line_reaches_any_other_handler_and_respects_the_level(
    restored_logging,
) -> None:
    stream = io.StringIO()
    configure_logging("warning", stream)
    log_request({"path": "/predict"})
    assert stream.getvalue() == ""  # below the configured level: no line
    logging.getLogger().setLevel(logging.INFO)
    records: list[logging.LogRecord] = []
    second = logging.Handler()
    second.emit = records.append  # a second handler (a test's capture): through logging
    logging.getLogger().addHandler(second)
    log_request({"path": "/a"})
    assert [(r.name, r.getMessage(), r.path) for r in records] == [(ACCESS, "request", "/a")]
    assert json.loads(stream.getvalue())["path"] == "/a"


def test_a_log_field_json_cannot_encode_as_utf8_is_still_written(restored_logging) -> None:
    stream = io.StringIO()
    configure_logging("info", stream)
    log_request({"raw": b"\xff"})
    assert json.loads(stream.getvalue())["raw"] == "b'\\xff'"
