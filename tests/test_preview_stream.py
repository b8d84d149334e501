"""The preview's stream and JSON on a real service (uvicorn on loopback) reading a video file.

The frame-rate assertions are caps, a correctness property (the stream must not send, and the
camera must not be read for the preview, more often than DIGITS_PREVIEW_FPS): they only ever
bound counts from above, never require speed.
"""

from __future__ import annotations

import base64
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import cv2
import httpx
import numpy as np
import pytest
from preview_helpers import FRAME_SIZE, readable_digits, write_digit_video
from service_helpers import Service, running

TOKEN = "preview-test-token"
FPS = 4
ROI = (0.1, 0.05, 0.8, 0.9)
VIDEO_DIGIT = 5
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture(scope="module")
def service(
    tmp_path_factory: pytest.TempPathFactory, digit_model_path: Path, mnist_dir: Path
) -> Iterator[Service]:
    tmp = tmp_path_factory.mktemp("preview_stream")
    digit = readable_digits(digit_model_path, mnist_dir, [VIDEO_DIGIT])[VIDEO_DIGIT]
    video = write_digit_video(tmp / "one_digit.avi", [digit], frames_per_digit=30)
    roi = ",".join(map(str, ROI))
    yield from running(
        tmp, digit_model_path, "--camera", f"opencv:{video}", "--roi", roi, "--token", TOKEN,
        env={"DIGITS_PREVIEW_FPS": str(FPS)},
    )


def stream_parts(base_url: str, seconds: float, **request: object) -> list[bytes]:
    """The JPEG parts of /stream.mjpg received within `seconds` of opening it."""
    parts: list[bytes] = []
    buffer = b""
    with httpx.stream("GET", base_url + "/stream.mjpg", timeout=60, **request) as answer:
        assert answer.status_code == 200, answer.read()
        content_type = answer.headers["content-type"]
        assert content_type.startswith("multipart/x-mixed-replace")
        boundary = b"--" + content_type.split("boundary=")[1].encode()
        until = time.monotonic() + seconds
        for chunk in answer.iter_bytes():
            buffer += chunk
            while True:
                start = buffer.find(boundary)
                head_end = buffer.find(b"\r\n\r\n", start)
                if start < 0 or head_end < 0:
                    break
                headers = buffer[start:head_end].decode("latin-1").lower()
                length = int(headers.split("content-length:")[1].split("\r\n")[0])
                if len(buffer) < head_end + 4 + length:
                    break
                parts.append(buffer[head_end + 4 : head_end + 4 + length])
                buffer = buffer[head_end + 4 + length :]
            if time.monotonic() >= until:
                break
    return parts


def frames_read(service: Service) -> int:
    return httpx.get(service.base_url + "/readyz", headers=AUTH, timeout=60).json()["camera"][
        "frames_read"
    ]


def test_page_stream_and_readings_need_the_token(service: Service) -> None:
    for path in ("/", "/stream.mjpg", "/preview/latest", "/static/app.js"):
        assert httpx.get(service.base_url + path, timeout=60).status_code == 401, path
        wrong = httpx.get(service.base_url + path, cookies={"digits_token": "nope"}, timeout=60)
        assert wrong.status_code == 401, path
    # A browser gets the login box (and nothing of the page) instead of the JSON error.
    login = httpx.get(service.base_url + "/", timeout=60)
    assert "text/html" in login.headers["content-type"]
    assert 'id="login"' in login.text
    assert '<img id="stream"' not in login.text
    for credentials in ({"headers": AUTH}, {"cookies": {"digits_token": TOKEN}}):
        page = httpx.get(service.base_url + "/", timeout=60, **credentials)
        assert page.status_code == 200
        assert '<img id="stream"' in page.text
    assert TOKEN not in service.log()  # neither header nor cookie value is ever logged


def test_stream_sends_jpeg_frames_no_faster_than_the_cap(service: Service) -> None:
    window = 2.0
    started = time.monotonic()
    parts = stream_parts(service.base_url, window, cookies={"digits_token": TOKEN})
    elapsed = time.monotonic() - started
    assert parts, "the stream sent no frame"
    # The cap: one frame may be the already-published one, plus one per period.
    assert len(parts) <= FPS * elapsed + 2, f"{len(parts)} frames in {elapsed:.1f} s"
    frame = cv2.imdecode(np.frombuffer(parts[-1], np.uint8), cv2.IMREAD_UNCHANGED)
    assert frame is not None, "a part is not a decodable JPEG"
    assert frame.shape[:2] == FRAME_SIZE


def test_two_viewers_share_one_capture(service: Service) -> None:
    window = 2.0
    received: list[list[bytes]] = [[], []]

    def watch(slot: int) -> None:
        received[slot] = stream_parts(service.base_url, window, headers=AUTH)

    before = frames_read(service)
    started = time.monotonic()
    viewers = [threading.Thread(target=watch, args=(slot,)) for slot in range(2)]
    for viewer in viewers:
        viewer.start()
    for viewer in viewers:
        viewer.join(120)
    elapsed = time.monotonic() - started
    reads = frames_read(service) - before
    assert all(received), f"a viewer got no frame: {[len(r) for r in received]}"
    # Two viewers, one capture per frame: the camera is read at the capped rate, not twice it.
    assert reads <= FPS * elapsed + 2, f"{reads} camera reads in {elapsed:.1f} s for 2 viewers"
    # Both saw the same frames (encoded once): their JPEG parts overlap byte for byte.
    assert set(received[0]) & set(received[1])


def test_latest_shows_the_reading_inputs_and_history(service: Service) -> None:
    deadline = time.monotonic() + 60
    while True:
        latest = httpx.get(service.base_url + "/preview/latest", headers=AUTH, timeout=60).json()
        if (latest["reading"] and latest["reading"]["number"]) or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert latest["camera"]["ready"]
    assert tuple(latest["roi"]) == ROI
    assert latest["fps"] == FPS
    assert (latest["frame"]["height"], latest["frame"]["width"]) == FRAME_SIZE
    reading = latest["reading"]
    assert reading["number"] == str(VIDEO_DIGIT)
    assert 0.5 < reading["confidence"] <= 1.0
    assert len(reading["digits"]) == 1
    assert len(reading["inputs"]) >= 1  # one per piece found (a broken stroke is two)
    png = base64.b64decode(reading["inputs"][0].removeprefix("data:image/png;base64,"))
    model_input = cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_UNCHANGED)
    assert model_input.shape == (28, 28)
    assert model_input.max() > 200 and model_input[0, 0] < 30  # MNIST polarity: light on dark
    assert latest["history"][0]["number"] == str(VIDEO_DIGIT)


def test_predict_answers_while_two_streams_are_open(service: Service) -> None:
    stop = threading.Event()

    def watch() -> None:
        with httpx.stream("GET", service.base_url + "/stream.mjpg", headers=AUTH, timeout=60) as s:
            for _ in s.iter_bytes():
                if stop.is_set():
                    return

    viewers = [threading.Thread(target=watch) for _ in range(2)]
    for viewer in viewers:
        viewer.start()
    try:
        for _ in range(3):
            answer = httpx.get(service.base_url + "/predict", headers=AUTH, timeout=60)
            assert answer.status_code == 200, answer.text
            assert answer.json()["number"] == str(VIDEO_DIGIT)
    finally:
        stop.set()
        for viewer in viewers:
            viewer.join(60)


def test_an_open_stream_does_not_hold_up_shutdown(
    tmp_path: Path, digit_model_path: Path, mnist_dir: Path
) -> None:
    digit = readable_digits(digit_model_path, mnist_dir, [VIDEO_DIGIT])[VIDEO_DIGIT]
    video = write_digit_video(tmp_path / "one_digit.avi", [digit], frames_per_digit=10)
    watched = Service(tmp_path, digit_model_path, "--camera", f"opencv:{video}")
    receiving, ended = threading.Event(), threading.Event()

    def watch() -> None:
        with httpx.stream("GET", watched.base_url + "/stream.mjpg", timeout=60) as answer:
            for _ in answer.iter_bytes():
                receiving.set()
        ended.set()  # the server ended the response: the multipart stream closed cleanly

    try:
        watched.wait_listening()
        viewer = threading.Thread(target=watch, daemon=True)
        viewer.start()
        assert receiving.wait(60), "the stream sent nothing"
    finally:
        assert watched.stop() == 0
    viewer.join(60)
    assert ended.is_set()
    # uvicorn cancels what is still running when its graceful-shutdown time is up; the stream
    # must have ended by itself before that.
    assert "timeout graceful shutdown exceeded" not in watched.log()
