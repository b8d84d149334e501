"""Run the real service (`python -m device serve`) on loopback for the HTTP tests."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import cv2
import httpx
import numpy as np
import pytest

REPO = Path(__file__).resolve().parent.parent
HANDWRITING = REPO.parent / "shared" / "data" / "handwriting_dev"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def handwritten_png(label: int, index: int = 0) -> bytes:
    """A real scanned handwritten digit (handwriting_dev has 0..7), as PNG bytes."""
    files = sorted((HANDWRITING / "images").glob(f"{label}_*.png"))
    return files[index].read_bytes()


def digit_scene(label: int, size: tuple[int, int] = (240, 320)) -> np.ndarray:
    """A camera-like gray frame: one handwritten digit on a lighter, uneven sheet."""
    digit = cv2.imdecode(np.frombuffer(handwritten_png(label), np.uint8), cv2.IMREAD_GRAYSCALE)
    height, width = size
    frame = np.full((height, width), 210, np.uint8)
    scale = (height * 0.5) / digit.shape[0]
    digit = cv2.resize(digit, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    y, x = (height - digit.shape[0]) // 2, (width - digit.shape[1]) // 2
    frame[y : y + digit.shape[0], x : x + digit.shape[1]] = np.minimum(
        frame[y : y + digit.shape[0], x : x + digit.shape[1]], digit
    )
    return frame


class Service:
    """One `python -m device serve` process; stderr (its JSON log) goes to a file."""

    def __init__(
        self, tmp: Path, model: Path, *args: str, env: dict[str, str] | None = None
    ) -> None:
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.log_path = tmp / f"service-{self.port}.log"
        command = [sys.executable, "-m", "device", "serve", "--host", "127.0.0.1"]
        command += ["--port", str(self.port), "--model", str(model), *args]
        full_env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                command, cwd=REPO, env=full_env, stdout=log, stderr=subprocess.STDOUT
            )

    def wait_listening(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"service exited {self.process.returncode}:\n{self.log()}")
            try:
                httpx.get(self.base_url + "/healthz", timeout=1.0)
            except httpx.TransportError:
                time.sleep(0.1)
                continue
            return
        raise AssertionError(f"service did not listen within {timeout} s:\n{self.log()}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def log_entries(self, logger: str | None = None) -> list[dict]:
        """The JSON log lines written so far (of one logger, if named), parsed.

        A line the service is writing while we read is only partly in the file; it is left for
        the next read rather than parsed half-way.
        """
        complete = self.log().rpartition("\n")[0]
        entries = [json.loads(line) for line in complete.splitlines() if line.startswith("{")]
        return [entry for entry in entries if logger in (None, entry["logger"])]

    def wait_for_log_entry(
        self, wanted: Callable[[dict], bool], logger: str | None = None, timeout: float = 10.0
    ) -> dict:
        """The first log entry `wanted` accepts, waiting for it: the service logs a request
        after its response has gone out, so the client can be ahead of the log."""
        deadline = time.monotonic() + timeout
        while True:
            found = [entry for entry in self.log_entries(logger) if wanted(entry)]
            if found:
                return found[0]
            if time.monotonic() > deadline:
                raise AssertionError(f"no such log entry within {timeout} s:\n{self.log()}")
            time.sleep(0.05)

    def rss_kib(self) -> int:
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        raise AssertionError("no VmRSS line")

    def stop(self, timeout: float = 20.0) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
                raise AssertionError(f"service ignored SIGTERM for {timeout} s") from None
        return self.process.returncode


def running(
    tmp: Path, model: Path, *args: str, env: dict[str, str] | None = None
) -> Iterator[Service]:
    """Generator for fixtures: a listening service, stopped (SIGTERM) afterwards."""
    service = Service(tmp, model, *args, env=env)
    try:
        service.wait_listening()
        yield service
    finally:
        service.stop()


SCENE_DIGIT = 3


@pytest.fixture(scope="session")
def camera_scene_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """What the file camera of the shared service sees: one handwritten 3 on a sheet."""
    folder = tmp_path_factory.mktemp("camera")
    cv2.imwrite(str(folder / "scene.png"), digit_scene(SCENE_DIGIT))
    return folder


@pytest.fixture(scope="session")
def served(
    tmp_path_factory: pytest.TempPathFactory, digit_model_path: Path, camera_scene_dir: Path
) -> Iterator[Service]:
    """The service most HTTP tests share: real uvicorn on loopback, a file camera, no token."""
    tmp = tmp_path_factory.mktemp("served")
    yield from running(tmp, digit_model_path, "--camera", f"file:{camera_scene_dir}")
