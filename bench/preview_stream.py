"""/predict latency with and without live-preview viewers, in one run, on a video-file camera.

    .venv/bin/python bench/preview_stream.py [--requests 300] [--viewers 2] [--fps 5]

Starts `python -m device serve` on loopback with `--camera opencv:<video>` (MNIST test digits,
dark on light paper, 640×480 MJPG, the same generator the preview tests use), then times
GET /predict (a camera reading) and POST /predict (a 640×480 PNG upload), one request at a
time, with no stream open and with N /stream.mjpg viewers reading frames. The two conditions
alternate in blocks, so a change in the shared machine's load hits both alike. Writes
docs/PREVIEW_BENCH.md.
"""

from __future__ import annotations

import argparse
import os
import platform
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import cv2
import httpx

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))  # one video generator for the tests and this bench
from preview_helpers import paper_frame, readable_digits, write_digit_video  # noqa: E402

VIDEO_SIZE = (480, 640)  # height, width: a common Pi/USB camera preview size
BLOCK = 50  # requests per block; blocks of the two conditions alternate


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_service(model: Path, video: Path, fps: float, log: Path) -> tuple[subprocess.Popen, str]:
    port = free_port()
    command = [sys.executable, "-m", "device", "serve", "--host", "127.0.0.1", "--port",
               str(port), "--model", str(model), "--camera", f"opencv:{video}",
               "--log-level", "warning"]
    env = {**os.environ, "DIGITS_PREVIEW_FPS": str(fps)}
    with log.open("wb") as out:
        process = subprocess.Popen(command, cwd=REPO, env=env, stdout=out, stderr=out)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"service exited {process.returncode}: {log.read_text()}")
        try:
            if httpx.get(base + "/readyz", timeout=2).status_code == 200:
                return process, base
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    process.kill()
    raise SystemExit("service not ready within 300 s")


class Viewers:
    """N clients reading /stream.mjpg (each in its own thread) while a block runs."""

    def __init__(self, base: str, count: int) -> None:
        self.base = base
        self.frames = [0] * count
        self.stop = threading.Event()
        self.threads = [threading.Thread(target=self._watch, args=(i,)) for i in range(count)]

    def _watch(self, slot: int) -> None:
        with httpx.stream("GET", self.base + "/stream.mjpg", timeout=60) as answer:
            for chunk in answer.iter_bytes():
                self.frames[slot] += chunk.count(b"Content-Type: image/jpeg")
                if self.stop.is_set():
                    return

    def __enter__(self) -> Viewers:
        for thread in self.threads:
            thread.start()
        deadline = time.monotonic() + 60
        while min(self.frames, default=1) == 0 and time.monotonic() < deadline:
            time.sleep(0.05)  # every viewer is really receiving before timing starts
        return self

    def __exit__(self, *_: object) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(60)


def time_requests(client: httpx.Client, count: int, upload: bytes | None) -> list[float]:
    times = []
    for _ in range(count):
        started = time.perf_counter()
        if upload is None:
            answer = client.get("/predict")
        else:
            answer = client.post("/predict", files={"file": ("digit.png", upload, "image/png")})
        elapsed = time.perf_counter() - started
        if answer.status_code != 200:
            raise SystemExit(f"/predict answered {answer.status_code}: {answer.text}")
        times.append(elapsed * 1000)
    return times


def summary(times: list[float]) -> str:
    ordered = sorted(times)
    p99 = ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]
    return f"{statistics.median(ordered):.1f} | {p99:.1f} | {statistics.fmean(ordered):.1f}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=REPO / "models" / "digitnet_int8.tflite")
    parser.add_argument("--mnist-dir", type=Path, default=Path(os.environ.get(
        "MNIST_DATA_DIR", REPO.parent / "shared" / "data" / "mnist")))
    parser.add_argument("--requests", type=int, default=300, help="per endpoint and condition")
    parser.add_argument("--viewers", type=int, default=2)
    parser.add_argument("--fps", type=float, default=5.0, help="DIGITS_PREVIEW_FPS")
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "PREVIEW_BENCH.md")
    args = parser.parse_args(argv)

    tmp = Path(tempfile.mkdtemp(prefix="preview-bench-"))
    digits = readable_digits(args.model, args.mnist_dir, [3, 8])
    video = write_digit_video(tmp / "digits.avi", [digits[3], digits[8]], 40, VIDEO_SIZE)
    ok, png = cv2.imencode(".png", paper_frame(digits[3], VIDEO_SIZE))
    assert ok
    upload = png.tobytes()
    load_before = os.getloadavg()
    process, base = start_service(args.model, video, args.fps, tmp / "service.log")
    times: dict[tuple[str, str], list[float]] = {}
    stream_frames = 0
    started = time.monotonic()
    try:
        with httpx.Client(base_url=base, timeout=60) as client:
            time_requests(client, 20, None)
            time_requests(client, 20, upload)  # warm-up: caches, first allocations
            reads_before = client.get("/readyz").json()["camera"]["frames_read"]
            for _ in range(max(1, args.requests // BLOCK)):
                for condition in ("no stream", f"{args.viewers} stream viewers"):
                    viewing = Viewers(base, args.viewers if condition != "no stream" else 0)
                    with viewing:
                        for endpoint, body in (("GET", None), ("POST", upload)):
                            times.setdefault((endpoint, condition), []).extend(
                                time_requests(client, BLOCK, body))
                    stream_frames += sum(viewing.frames)
            reads = client.get("/readyz").json()["camera"]["frames_read"] - reads_before
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(60)
    gets = sum(len(values) for (endpoint, _), values in times.items() if endpoint == "GET")
    wall = time.monotonic() - started

    lines = [
        "# /predict latency with the live preview open",
        "",
        f"Measured by `bench/preview_stream.py` on {time.strftime('%Y-%m-%d')}: the service on "
        f"loopback reading a {VIDEO_SIZE[1]}×{VIDEO_SIZE[0]} MJPG video file as its camera "
        f"(`--camera opencv:…`), DIGITS_PREVIEW_FPS={args.fps:g}, model `{args.model.name}`. "
        f"One client, one request at a time; {len(next(iter(times.values())))} requests per "
        f"row, in blocks of {BLOCK} alternating between the two conditions. Latency is the "
        "client's wall time per request, in ms.",
        "",
        "| request | condition | median | p99 | mean |",
        "|---|---|---|---|---|",
    ]
    for (endpoint, condition), values in sorted(times.items()):
        what = "GET /predict (camera)" if endpoint == "GET" else "POST /predict (640×480 PNG)"
        lines.append(f"| {what} | {condition} | {summary(values)} |")
    lines += [
        "",
        f"During the run ({wall:.0f} s) the viewers received {stream_frames} frames and the "
        f"camera was read {reads} times: {gets} for GET /predict, so {reads - gets} for the "
        f"preview, whose frames each went to all {args.viewers} viewers (read and encoded once).",
        "",
        f"Machine: {platform.machine()}, {os.cpu_count()} cores, Python "
        f"{platform.python_version()}; load average {load_before[0]:.1f} at the start (a shared "
        "machine with other jobs running: compare the rows with each other, not with a Pi).",
        "",
    ]
    args.out.write_text("\n".join(lines))
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
