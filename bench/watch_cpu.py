"""CPU share of the watch loop at 2 fps with MQTT on, as a ratio to the idle service, in one run.

    .venv/bin/python -m bench.watch_cpu [--seconds 120] [--fps 2] [--doc docs/BENCHMARKS.md]

Starts Debian's mosquitto on a loopback port and two services side by side on the same kind of
video-file camera (640×480 MJPG, MNIST test digits on paper, a new digit or blank paper every
5 s at 2 fps, the generator the tests use):

  idle   `python -m device serve --camera opencv:VIDEO`: nothing reads the camera
  watch  the same with `--mqtt-url mqtt://127.0.0.1:PORT`, which turns the watch loop on

After a warm-up, the CPU time each process uses (user + system, /proc/PID/stat) is read over
one and the same window, so whatever else the machine does lands on both. Writes
bench/out/watch_cpu.json and the "Watch loop" section of docs/BENCHMARKS.md (bench.run_all runs
it too, as one of its phases).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))  # one video generator and broker for tests and bench
from mqtt_helpers import MOSQUITTO, Mosquitto  # noqa: E402
from preview_helpers import readable_digits, write_segments_video  # noqa: E402

from bench import servers  # noqa: E402
from bench.images import default_mnist_dir  # noqa: E402

OUT = REPO / "bench" / "out"
VIDEO_SIZE = (480, 640)  # height, width: a common Pi/USB camera preview size
WARM_UP_S = 10.0  # the first readings, the first MQTT messages, imports settling


def _service_command(model: Path, video: Path, port: int, *extra: str) -> list[str]:
    return [sys.executable, "-m", "device", "serve", "--host", "127.0.0.1", "--port", str(port),
            "--model", str(model), "--camera", f"opencv:{video}", "--log-level", "warning",
            *extra]


def _watch_status(server: servers.Server) -> dict:
    ready = httpx.get(server.url + "/readyz", timeout=30).json()
    (mqtt,) = ready["publishers"]
    return {"frames_watched": ready["watch"]["frames_watched"],
            "messages_published": mqtt["messages_published"], "connected": mqtt["connected"]}


def measure(model: Path, mnist_dir: Path, seconds: float, fps: float) -> dict:
    """The figures of one run (see the module's docstring)."""
    if not Path(MOSQUITTO).is_file():
        return {"skipped": "Debian's mosquitto is not installed (apt-get install mosquitto)"}
    model = model.resolve()
    started_at = time.strftime("%Y-%m-%d %H:%M:%S %Z")
    with tempfile.TemporaryDirectory(prefix="watch-cpu-") as folder:
        tmp = Path(folder)
        digits = readable_digits(model, mnist_dir, [3, 7])
        per_state = round(5 * fps)  # each state held 5 s at the watch rate
        video = write_segments_video(
            tmp / "camera.avi", [(digits[3], per_state), (digits[7], per_state), (None, per_state)],
            VIDEO_SIZE,
        )
        with Mosquitto(tmp) as broker:
            ports = {"idle": servers.free_port(), "watch": servers.free_port()}
            commands = {
                "idle": _service_command(model, video, ports["idle"]),
                "watch": _service_command(model, video, ports["watch"], "--mqtt-url",
                                          broker.url(), "--watch-fps", f"{fps:g}"),
            }
            started: dict[str, servers.Server] = {}
            try:
                for name, command in commands.items():
                    started[name] = servers.start(name, command, ports[name],
                                                  OUT / "logs" / f"watch_cpu_{name}.log")
                time.sleep(WARM_UP_S)
                pids = {name: server.process.pid for name, server in started.items()}
                if broker.process is None:
                    raise RuntimeError("the broker is not running")
                pids["mosquitto"] = broker.process.pid
                before = {name: servers.cpu_seconds(pid) for name, pid in pids.items()}
                status_before = _watch_status(started["watch"])
                window_started = time.perf_counter()
                time.sleep(seconds)
                after = {name: servers.cpu_seconds(pid) for name, pid in pids.items()}
                window = time.perf_counter() - window_started
                status_after = _watch_status(started["watch"])
            finally:
                for server in started.values():
                    server.stop()
    cpu = {name: round(after[name] - before[name], 3) for name in pids}
    frames = status_after["frames_watched"] - status_before["frames_watched"]
    return {
        "fps": fps,
        "window_s": round(window, 1),
        "cpu_s": cpu,
        "share": {name: round(used / window, 5) for name, used in cpu.items()},
        "ratio": round(cpu["watch"] / cpu["idle"], 1) if cpu["idle"] > 0 else None,
        "frames_watched": frames,
        "mqtt_messages": status_after["messages_published"] - status_before["messages_published"],
        "mqtt_connected": status_after["connected"],
        "cpu_ms_per_frame": round(1000 * (cpu["watch"] - cpu["idle"]) / frames, 1)
        if frames else None,
        "video": f"{VIDEO_SIZE[1]}×{VIDEO_SIZE[0]} MJPG, a new state every 5 s",
        "loadavg": " ".join(Path("/proc/loadavg").read_text().split()[:3]),
        "started": started_at,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=Path, default=REPO / "models" / "digitnet_int8.tflite")
    parser.add_argument("--mnist-dir", type=Path, default=default_mnist_dir())
    parser.add_argument("--seconds", type=float, default=120.0, help="the measured window")
    parser.add_argument("--fps", type=float, default=2.0, help="the watch rate")
    parser.add_argument("--doc", type=Path, default=REPO / "docs" / "BENCHMARKS.md")
    args = parser.parse_args(argv)
    result = measure(args.model, args.mnist_dir, args.seconds, args.fps)
    if "skipped" in result:
        raise SystemExit(result["skipped"])
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "watch_cpu.json").write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))

    from bench.report import replace_watch_section

    existing = args.doc.read_text() if args.doc.is_file() else ""
    args.doc.write_text(replace_watch_section(existing, result))
    print(f"wrote the watch section of {args.doc}")


if __name__ == "__main__":
    main()
