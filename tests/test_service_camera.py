"""Camera faults against the real service: a source that fails to open, raises, returns nothing or
hangs gives 503 with the reason, uploads keep working, and GET /predict recovers by itself.
Plus SIGTERM (in-flight request finishes, camera released) and the systemd READY/WATCHDOG hook."""

from __future__ import annotations

import json
import signal
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import cv2
import httpx
import numpy as np
import pytest
from fault_camera import write_control
from service_helpers import Service, digit_scene, handwritten_png, running

from device.cameras.base import CameraError
from device.service.camera_supervisor import CameraSupervisor, CameraUnavailableError

READ_TIMEOUT_S = 1.0
# Generous bounds for "eventually": the retry interval is 0.2 s, the machine is shared and slow.
EVENTUALLY_S = 20.0


def _eventually(check: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + EVENTUALLY_S
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.1)
    raise AssertionError(f"never happened: {what}")


@pytest.fixture(scope="module")
def scene(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("scene") / "seven.png"
    cv2.imwrite(str(path), digit_scene(7))
    return path


def _fault_args(control: Path) -> list[str]:
    return [
        "--camera", f"python:tests.fault_camera:FaultCamera:{control}",
        "--capture-timeout-s", str(READ_TIMEOUT_S),
        "--camera-retry-s", "0.2",
    ]  # fmt: skip


@pytest.fixture(scope="module")
def faulty(
    tmp_path_factory: pytest.TempPathFactory, digit_model_path: Path, scene: Path
) -> Iterator[tuple[Service, Path]]:
    """A service whose camera is absent at start (every open fails)."""
    tmp = tmp_path_factory.mktemp("faulty")
    control = tmp / "camera.json"
    write_control(control, mode="fail_open", image=str(scene))
    for service in running(tmp, digit_model_path, *_fault_args(control)):
        yield service, control


def _get(service: Service, path: str) -> httpx.Response:
    return httpx.get(service.base_url + path, timeout=30)


def _camera_works(service: Service) -> bool:
    response = _get(service, "/predict")
    return response.status_code == 200 and response.json()["digit"] == 7


def _set(control: Path, scene: Path, **fault: object) -> None:
    write_control(control, image=str(scene), **fault)


def _unavailable(service: Service, *words: str) -> None:
    response = _get(service, "/predict")
    assert response.status_code == 503, response.text
    body = response.json()
    assert body["error"] == "camera_unavailable"
    assert all(word in body["detail"] for word in words), body


def test_absent_camera_at_start_serves_uploads_then_recovers(
    faulty: tuple[Service, Path], scene: Path
) -> None:
    service, control = faulty
    assert "camera not available" in service.log()
    ready = _get(service, "/readyz")
    assert ready.status_code == 503
    assert "no such device" in ready.json()["reason"]
    _unavailable(service, "no such device")
    upload = httpx.post(service.base_url + "/predict", files={"file": ("d", scene.read_bytes())})
    assert upload.status_code == 200
    assert upload.json()["digit"] == 7

    _set(control, scene, mode="ok")
    _eventually(lambda: _camera_works(service), "camera came back")
    assert _get(service, "/readyz").status_code == 200


@pytest.mark.parametrize(
    ("fault", "words"),
    [({"mode": "raise"}, ["read failed"]), ({"mode": "empty"}, ["no frame"])],
    ids=["raises", "returns-nothing"],
)
def test_failing_reads_are_503_and_recover(
    faulty: tuple[Service, Path], scene: Path, fault: dict, words: list[str]
) -> None:
    service, control = faulty
    _set(control, scene, mode="ok")
    _eventually(lambda: _camera_works(service), "camera working before the fault")
    _set(control, scene, **fault)
    _unavailable(service, *words)
    _set(control, scene, mode="ok")
    _eventually(lambda: _camera_works(service), "camera came back after the fault")


def test_hung_read_times_out_and_the_server_stays_responsive(
    faulty: tuple[Service, Path], scene: Path
) -> None:
    service, control = faulty
    _set(control, scene, mode="ok")
    _eventually(lambda: _camera_works(service), "camera working before the hang")
    _set(control, scene, mode="hang", hang_s=6)
    _unavailable(service, "has not returned a frame")
    # While the driver is stuck: a second GET fails fast, liveness and uploads still answer.
    _unavailable(service, "has not returned a frame")
    assert _get(service, "/healthz").status_code == 200
    assert _get(service, "/readyz").status_code == 503
    upload = httpx.post(service.base_url + "/predict", files={"file": ("d", handwritten_png(2))})
    assert upload.status_code == 200
    metrics = _get(service, "/metrics").text
    assert 'digits_camera_errors_total{kind="timeout"} 0.0' not in metrics

    _set(control, scene, mode="ok")
    _eventually(lambda: _camera_works(service), "camera reopened after the hung read returned")
    assert "close" in control.with_suffix(".events").read_text()


# ---- SIGTERM and the systemd hook (a service of their own: these stop it) --------------------


def _listen(path: Path) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    sock.settimeout(0.2)
    return sock


def _messages(sock: socket.socket, seconds: float) -> list[str]:
    got: list[str] = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            got.append(sock.recv(4096).decode())
        except TimeoutError:
            continue
    return got


def test_ready_watchdog_and_graceful_sigterm(
    tmp_path: Path, digit_model_path: Path, scene: Path
) -> None:
    control = tmp_path / "camera.json"
    _set(control, scene, mode="ok")
    notify = _listen(tmp_path / "notify.sock")
    env = {"NOTIFY_SOCKET": str(tmp_path / "notify.sock"), "WATCHDOG_USEC": "400000"}
    service = Service(tmp_path, digit_model_path, *_fault_args(control), env=env)
    try:
        service.wait_listening()
        first = _messages(notify, 3.0)
        assert any(m.startswith("READY=1") for m in first), first
        assert first.count("WATCHDOG=1") >= 2, first
        assert _get(service, "/readyz").status_code == 200

        # A slow read (under the timeout) is in flight when SIGTERM arrives: it must finish.
        _set(control, scene, mode="hang", hang_s=0.8)
        answers: list[httpx.Response] = []
        request = threading.Thread(target=lambda: answers.append(_get(service, "/predict")))
        request.start()
        time.sleep(0.3)
        service.process.send_signal(signal.SIGTERM)
        request.join(30)
        assert answers, "the in-flight request got no answer"
        assert answers[0].status_code == 200
        assert answers[0].json()["digit"] == 7
        assert service.process.wait(30) == 0
        events = control.with_suffix(".events").read_text().split()
        assert events[-1] == "close"  # the camera was released on the way out
        assert "camera released" in service.log()
    finally:
        service.stop()
        notify.close()


def test_ready_means_a_frame_was_read(tmp_path: Path, digit_model_path: Path) -> None:
    # A file camera whose only file is no image opens (the file is there) but never gives a
    # frame: not ready, and GET /predict says why, instead of ready-then-503.
    folder = tmp_path / "camera"
    folder.mkdir()
    (folder / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    for service in running(tmp_path, digit_model_path, "--camera", f"file:{folder}"):
        ready = _get(service, "/readyz")
        assert ready.status_code == 503
        why = "broken.png: the PNG image's header is damaged"
        assert why in ready.json()["reason"]
        _unavailable(service, why)


def test_a_file_camera_serves_frames_the_size_the_reader_needs(
    tmp_path: Path, digit_model_path: Path
) -> None:
    # A 1600×1200 picture is served 640×480 (the reader's picture_side): the preview's frame,
    # and the boxes drawn on it, are in those pixels, and the digit still reads.
    path = tmp_path / "large.png"
    cv2.imwrite(str(path), digit_scene(7, size=(1200, 1600)))
    for service in running(tmp_path, digit_model_path, "--camera", f"file:{path}"):
        answer = _get(service, "/predict").json()
        assert answer["digit"] == 7
        box = answer["digits"][0]["box"]
        assert box["x"] + box["w"] <= 640 and box["y"] + box["h"] <= 480
        frame = _get(service, "/preview/latest").json()["frame"]
        assert (frame["width"], frame["height"]) == (640, 480)


def test_a_file_camera_image_over_the_limit_names_the_service_setting(
    tmp_path: Path, digit_model_path: Path
) -> None:
    # It once named OPENCV_IO_MAX_IMAGE_PIXELS, which the service sets from this one itself.
    path = tmp_path / "large.png"
    cv2.imwrite(str(path), digit_scene(7, size=(1000, 1200)))
    for service in running(tmp_path, digit_model_path, "--camera", f"file:{path}",
                           "--max-image-pixels", "1000000"):
        _unavailable(service, "1200×1000 = 1.2 megapixels, more than the limit of 1.0 "
                              "megapixels (DIGITS_MAX_IMAGE_PIXELS raises it)")
        assert "OPENCV" not in _get(service, "/readyz").json()["reason"]


def test_a_file_camera_waits_for_room_in_the_uploads_pixel_budget(
    tmp_path: Path, digit_model_path: Path
) -> None:
    from device.service.context import build_context
    from device.service.settings import load_settings

    path = tmp_path / "scene.png"
    cv2.imwrite(str(path), digit_scene(7))
    context = build_context(load_settings(model=digit_model_path, camera=f"file:{path}"))
    budget = context.decode_budget
    try:
        with budget.room_for(budget.pixels):  # as a 40-megapixel upload being read does
            context.camera.start(wait_for_first_open=0.5)
            assert not context.camera.ready  # its first picture waits for room
        _eventually(lambda: context.camera.ready, "the camera opened once there was room")
    finally:
        context.camera.close()


# ---- the supervisor on its own (fast, in-process) -------------------------------------------


class _Scripted:
    """A camera driven by a list of behaviours, one per read."""

    name = "scripted"

    def __init__(self, script: list[str]) -> None:
        self.script = script
        self.closed = 0

    def read(self) -> np.ndarray:
        step = self.script.pop(0) if self.script else "ok"
        if step == "hang":
            time.sleep(1.0)
        return np.zeros((4, 4), np.uint8)

    def close(self) -> None:
        self.closed += 1


def test_heartbeat_goes_stale_only_while_the_loop_is_stuck() -> None:
    import asyncio

    # The first read proves the camera works at opening (readiness); the second one hangs.
    camera = _Scripted(["ok", "hang"])
    supervisor = CameraSupervisor(
        "x", read_timeout=0.2, retry_interval=0.1, opener=lambda s: camera
    )
    supervisor.start()
    try:
        assert supervisor.healthy()
        with pytest.raises(CameraUnavailableError, match="has not returned a frame"):
            asyncio.run(supervisor.capture())
        # 0.2 s timeout: stale after 2×0.2 + 2 s. The scripted hang is 1 s, so still healthy.
        assert supervisor.healthy()
        _eventually(lambda: camera.closed == 1, "hung camera closed after the read returned")
        frame = None

        def capture_ok() -> bool:
            nonlocal frame
            try:
                frame = asyncio.run(supervisor.capture())
            except CameraUnavailableError:
                return False
            return True

        _eventually(capture_ok, "reopened camera delivers")
        assert frame is not None
        assert not frame.flags.writeable  # shared between requests: nobody may draw on it
    finally:
        supervisor.close()
    assert camera.closed == 2


def test_a_slow_open_is_no_stuck_loop_for_the_watchdog() -> None:
    """Opening a stream that never answers took OpenCV 30 s: the heartbeat went stale and
    systemd restarted the service over a camera that was merely away. An open now has
    OPENING_S beyond a read's allowance (and OpenCV streams time out in 5 s)."""
    opening = threading.Event()
    release = threading.Event()

    def slow_opener(spec: str) -> _Scripted:
        opening.set()
        release.wait(10)
        raise CameraError("x: cannot be opened")

    supervisor = CameraSupervisor("x", read_timeout=0.2, opener=slow_opener)
    supervisor.start(wait_for_first_open=0)
    try:
        assert opening.wait(5)
        time.sleep(3.0)  # past a read's allowance (2 × 0.2 + 2 s), well inside an open's
        assert supervisor.healthy()
    finally:
        release.set()
        supervisor.close()


def test_opencv_streams_open_with_a_timeout_inside_the_watchdogs_allowance(monkeypatch) -> None:
    from device.cameras import opencv
    from device.service.camera_supervisor import OPENING_S

    opened: list[tuple] = []

    class Unreachable:
        def __init__(self, *args: object) -> None:
            opened.append(args)

        def isOpened(self) -> bool:  # noqa: N802 (OpenCV's name)
            return False

        def release(self) -> None:
            pass

    monkeypatch.setattr(opencv.cv2, "VideoCapture", Unreachable)
    with pytest.raises(CameraError, match="cannot be opened"):
        opencv.OpenCVCamera("rtsp://192.0.2.1/stream").open()
    (source, _, params), = opened
    assert source == "rtsp://192.0.2.1/stream"
    settings = dict(zip(params[::2], params[1::2], strict=True))
    timeouts = (settings[cv2.CAP_PROP_OPEN_TIMEOUT_MSEC], settings[cv2.CAP_PROP_READ_TIMEOUT_MSEC])
    assert sum(timeouts) / 1000 <= OPENING_S


def test_concurrent_captures_share_reads() -> None:
    import asyncio

    reads = 0

    class Counting(_Scripted):
        def read(self) -> np.ndarray:
            nonlocal reads
            reads += 1
            time.sleep(0.05)
            return np.full((2, 2), reads, np.uint8)

    supervisor = CameraSupervisor("x", opener=lambda s: Counting([]))
    supervisor.start()

    async def many() -> list[np.ndarray]:
        return await asyncio.gather(*(supervisor.capture() for _ in range(32)))

    try:
        frames = asyncio.run(many())
    finally:
        supervisor.close()
    assert len(frames) == 32
    assert reads < 32  # waiters during a read share the next one; captures never overlap


def test_a_camera_that_opens_but_gives_no_frame_is_not_ready() -> None:
    import asyncio

    class Mute(_Scripted):
        def read(self) -> np.ndarray:
            return np.zeros((0, 0), np.uint8)

    supervisor = CameraSupervisor("x", retry_interval=0.1, opener=lambda s: Mute([]))
    supervisor.start()
    try:
        assert not supervisor.ready
        assert "no frame" in (supervisor.reason or "")
        with pytest.raises(CameraUnavailableError, match="no frame"):
            asyncio.run(supervisor.capture())
    finally:
        supervisor.close()


def test_disabled_camera_is_healthy_and_explains() -> None:
    supervisor = CameraSupervisor("none")
    supervisor.start()
    assert supervisor.healthy()
    assert not supervisor.ready
    assert "disabled" in (supervisor.reason or "")
    assert json.dumps(supervisor.status())
