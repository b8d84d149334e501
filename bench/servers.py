"""Start the product's service or the baseline on loopback, time it to ready, read its memory."""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
READY_TIMEOUT_S = 300  # TensorFlow on a busy Pi can take a minute to import


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def product_command(model: Path, port: int) -> list[str]:
    # Uploads only: the benchmark measures the HTTP path, not a camera.
    return [sys.executable, "-m", "device", "serve", "--host", "127.0.0.1", "--port", str(port),
            "--model", str(model), "--camera", "none"]


def baseline_command(model: Path, port: int) -> list[str]:
    return [sys.executable, str(REPO / "bench" / "baseline_service.py"), "--host", "127.0.0.1",
            "--port", str(port), "--model", str(model)]


def _ready(port: int) -> bool:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
    try:
        connection.request("GET", "/readyz")
        return connection.getresponse().status == 200
    except OSError:
        return False
    finally:
        connection.close()


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def post_image(url: str, upload: Path) -> tuple[int, dict]:
    """One POST /predict with `upload` as multipart field `file`: (status, JSON body)."""
    boundary = "benchboundary0123456789"
    kind = "image/png" if upload.suffix == ".png" else "image/jpeg"
    body = (f'--{boundary}\r\nContent-Disposition: form-data; name="file"; '
            f'filename="{upload.name}"\r\nContent-Type: {kind}\r\n\r\n').encode()
    body += upload.read_bytes() + f"\r\n--{boundary}--\r\n".encode()
    host, port = url.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=120)
    try:
        connection.request("POST", "/predict", body=body, headers={
            "Content-Type": f"multipart/form-data; boundary={boundary}"})
        response = connection.getresponse()
        payload = response.read()
    finally:
        connection.close()
    try:
        return response.status, json.loads(payload)
    except ValueError:
        return response.status, {}


def memory_kib(pid: int) -> dict[str, int]:
    """VmRSS (resident now) and VmHWM (peak resident) of a process, in KiB."""
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in {"VmRSS", "VmHWM"}:
            fields[key] = int(value.split()[0])
    return fields


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def wait_idle(pid: int, quiet_s: float = 0.5, busy_below: float = 0.05,
              timeout_s: float = 120) -> float:
    """Wait until the process is idle (uses < `busy_below` of a core over `quiet_s`).

    When wrk stops, requests it gave up on may still be queued in the server; the next run must
    not pay for them. Returns the seconds waited.
    """
    started = time.perf_counter()
    before = cpu_seconds(pid)
    while time.perf_counter() - started < timeout_s:
        time.sleep(quiet_s)
        now = cpu_seconds(pid)
        if now - before < busy_below * quiet_s:
            break
        before = now
    return time.perf_counter() - started


@dataclass
class Server:
    name: str
    process: subprocess.Popen
    port: int
    ready_s: float
    log: Path
    ready_cpu_s: float = 0.0  # CPU time the process had used when it became ready

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def memory_kib(self) -> dict[str, int]:
        return memory_kib(self.process.pid)

    def wait_idle(self) -> float:
        return wait_idle(self.process.pid)

    def cpu_seconds(self) -> float:
        return cpu_seconds(self.process.pid)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def start(name: str, command: list[str], port: int, log: Path, cwd: Path = REPO) -> Server:
    """Start `command` in `cwd` and wait for GET /readyz to answer 200.

    ready_s is start → that answer. `python -m device` run in another source tree (`cwd`)
    serves that tree's code: the current directory comes first on the module path.
    """
    log.parent.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    with log.open("wb") as sink:
        started = time.perf_counter()
        process = subprocess.Popen(command, cwd=cwd, stdout=sink, stderr=subprocess.STDOUT,
                                   env=env)
    while not _ready(port):
        if process.poll() is not None:
            raise RuntimeError(f"{name} exited with {process.returncode} before ready; see {log}")
        if time.perf_counter() - started > READY_TIMEOUT_S:
            process.kill()
            raise RuntimeError(f"{name} not ready after {READY_TIMEOUT_S} s; see {log}")
        time.sleep(0.01)
    ready_s = time.perf_counter() - started
    return Server(name, process, port, ready_s, log, cpu_seconds(process.pid))
