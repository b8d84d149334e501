"""Every benchmark in one run, product against the Keras baseline; writes docs/BENCHMARKS.md.

    python -m bench.run_all [--tflite-model M] [--keras-model K] [--before REV] [--quick]

Phases, in this order, all on loopback: inference per digit (1 and 2 threads, one process each),
start-up to /readyz (alternating product and baseline), then per service one process that serves
the HTTP matrix (28×28 PNG and 1080p JPEG at 1, 8 and 32 connections, driven by wrk) and is then
topped up with PNG requests until it has answered --memory-requests, its resident memory read
along the way. Then the product against its ceiling, a bare FastAPI multipart endpoint (and, with
--before REV, against itself at that git revision), 28×28 PNG at 8 connections
(bench/http_ceiling.py), and the frame path, a picture to a reading on one thread, today's
device/ against an earlier commit's (bench/frame_path.py; --before REV, else the commit before
it was made cheap). Raw results go to bench/out/results.json, the report to
docs/BENCHMARKS.md and the plots to docs/bench/. Last, the watch loop's CPU at 2 fps with MQTT
against the idle service (bench/watch_cpu.py; needs mosquitto from apt, else that section says
it was not measured).
Needs wrk (apt) and, for the baseline and Keras rows, TensorFlow.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from importlib import metadata
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench import frame_path, http_ceiling, servers, watch_cpu  # noqa: E402
from bench.http_load import run_wrk, wrk_available  # noqa: E402
from bench.images import default_mnist_dir, digit_label, write_uploads  # noqa: E402

OUT = REPO / "bench" / "out"
PACKAGES = ["tensorflow", "keras", "ai-edge-litert", "numpy", "opencv-python-headless", "pillow",
            "fastapi", "starlette", "uvicorn", "uvloop", "httptools", "python-multipart"]
CONCURRENCIES = (1, 8, 32)


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def loadavg() -> str:
    """The 1, 5 and 15 minute load averages: how busy the shared machine was."""
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def machine() -> dict:
    cpu = next((line.split(":", 1)[1].strip() for line in
                Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith(("model name", "Model"))), platform.processor())
    mem_kib = int(next(line.split()[1] for line in Path("/proc/meminfo").read_text().splitlines()
                       if line.startswith("MemTotal")))
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    wrk = subprocess.run(["wrk", "--version"], capture_output=True, text=True, check=False)
    return {
        "cpu": cpu, "cores": len(os.sched_getaffinity(0)),
        "memory_gib": round(mem_kib / 2**20, 1), "machine": platform.machine(),
        "kernel": platform.release(), "python": platform.python_version(),
        "packages": versions, "wrk": (wrk.stdout or wrk.stderr).splitlines()[0].strip(),
    }


def default_keras_model(tflite_model: Path) -> Path:
    """models/digitnet.keras, else the Keras model the sidecar says the .tflite came from."""
    shipped = tflite_model.parent / "digitnet.keras"
    if shipped.is_file():
        return shipped
    sidecar = json.loads(tflite_model.with_suffix(".json").read_text())
    source = sidecar.get("source", {}).get("keras_model")
    if source and (REPO / source).is_file():
        return REPO / source
    raise SystemExit(f"no Keras model: {shipped} is missing; pass --keras-model")


def inference(args: argparse.Namespace) -> list[dict]:
    results = []
    float_tflite = OUT / f"{args.keras_model.stem}_float32.tflite"
    float_tflite.unlink(missing_ok=True)  # converted afresh from this run's Keras model
    for threads in (1, 2):
        log(f"inference, {threads} thread(s)")
        target = OUT / f"inference_{threads}.json"
        subprocess.run(
            [sys.executable, "-m", "bench.inference", "--threads", str(threads),
             "--tflite-model", str(args.tflite_model), "--keras-model", str(args.keras_model),
             "--float-tflite", str(float_tflite), "--calls", str(args.calls),
             "--predict-calls", str(args.predict_calls), "--json", str(target)],
            cwd=REPO, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        results.append(json.loads(target.read_text()))
    return results


def commands(args: argparse.Namespace) -> dict:
    return {
        "product": lambda port: servers.product_command(args.tflite_model, port),
        "baseline": lambda port: servers.baseline_command(args.keras_model, port),
    }


def startup(args: argparse.Namespace) -> tuple[dict[str, list[float]], dict[str, list[float]]]:
    """Wall seconds and CPU seconds from process start to the first /readyz 200, per service."""
    times: dict[str, list[float]] = {"product": [], "baseline": []}
    cpu: dict[str, list[float]] = {"product": [], "baseline": []}
    for i in range(args.startups):
        for name, command in commands(args).items():
            port = servers.free_port()
            server = servers.start(name, command(port), port, OUT / "logs" / f"{name}_start.log")
            server.stop()
            time.sleep(1)  # let the stopped process's teardown finish before the next start
            times[name].append(round(server.ready_s, 3))
            cpu[name].append(round(server.ready_cpu_s, 3))
            log(f"start-up {i + 1}/{args.startups}: {name} ready in {server.ready_s:.2f} s "
                f"({server.ready_cpu_s:.2f} s of CPU)")
    return times, cpu


def answer(server: servers.Server, upload: Path) -> dict:
    status, body = servers.post_image(server.url, upload)
    return {"status": status, "digit": body.get("digit"), "confidence": body.get("confidence"),
            "timings_ms": body.get("timings_ms")}  # the product reports its stages


def serve_and_load(name: str, command: list[str], port: int, uploads: dict[str, Path],
                   args: argparse.Namespace) -> dict:
    server = servers.start(name, command, port, OUT / "logs" / f"{name}_load.log")
    try:
        result: dict = {"ready_s": round(server.ready_s, 3), "rss_kib": [],
                        "memory_after_start": server.memory_kib()}
        served = 0
        result["answers"] = {kind: answer(server, path) for kind, path in uploads.items()}
        served += len(uploads)
        result["runs"] = []
        for kind in ("png", "jpeg"):
            for concurrency in CONCURRENCIES:
                server.wait_idle()
                run = run_wrk(server.url, uploads[kind], concurrency, args.duration)
                served += run["requests"]
                result["runs"].append({"image": kind, **run})
                result["rss_kib"].append([served, server.memory_kib()["VmRSS"]])
                log(f"{name} {kind} c={concurrency}: {run['requests_per_s']} req/s, "
                    f"p50 {run['latency_ms']['p50']} ms, p99 {run['latency_ms']['p99']} ms, "
                    f"{run['errors']} errors")
        budget = args.memory_budget_s if args.memory_budget_s > 0 else float("inf")
        deadline = time.perf_counter() + budget
        while served < args.memory_requests and time.perf_counter() < deadline:
            run = run_wrk(server.url, uploads["png"], 8, args.duration)
            served += run["requests"] - run["errors"]
            result["rss_kib"].append([served, server.memory_kib()["VmRSS"]])
        server.wait_idle()
        result["served"] = served
        result["memory_after_load"] = server.memory_kib()
        log(f"{name}: {served} requests served, RSS {result['memory_after_load']}")
        return result
    finally:
        server.stop()


def training(tflite_model: Path) -> dict | None:
    """The shipped model's training wall time, as its sidecar recorded it (never retrained here).

    From the sidecar's metrics.training, else from runs/default/metrics.json.
    """
    sidecar = json.loads(tflite_model.with_suffix(".json").read_text())
    data = sidecar.get("metrics", {}).get("training")
    source = f"{tflite_model.with_suffix('.json').name}: metrics.training"
    metrics = REPO / "runs" / "default" / "metrics.json"
    if not data and metrics.is_file():
        data, source = json.loads(metrics.read_text()), "runs/default/metrics.json"
    if not data:
        return None
    keys = ("arch", "train_seconds", "epochs_run", "test_accuracy", "params", "recipe",
            "versions")
    return {"source": source, **{k: data.get(k) for k in keys}}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tflite-model", type=Path,
                        default=REPO / "models" / "digitnet_int8.tflite")
    parser.add_argument("--keras-model", type=Path,
                        help="the float Keras model the baseline serves (default: "
                        "models/digitnet.keras, else the sidecar's source model)")
    parser.add_argument("--mnist-dir", type=Path, default=default_mnist_dir())
    parser.add_argument("--duration", type=float, default=15.0, help="seconds per wrk run")
    parser.add_argument("--memory-requests", type=int, default=10_000)
    parser.add_argument("--memory-budget-s", type=float, default=240.0,
                        help="longest top-up towards --memory-requests, s (0: no cap)")
    parser.add_argument("--startups", type=int, default=5)
    parser.add_argument("--calls", type=int, default=2000, help="calls per fast engine")
    parser.add_argument("--predict-calls", type=int, default=200, help="model.predict calls")
    parser.add_argument("--before", metavar="REV",
                        help="also serve the product as it was at this git revision, beside "
                        "the bare FastAPI endpoint (the HTTP ceiling phase), and time its "
                        "frame path beside today's")
    parser.add_argument("--ceiling-rounds", type=int, default=3,
                        help="wrk runs per service in the HTTP ceiling phase")
    parser.add_argument("--watch-seconds", type=float, default=120.0,
                        help="window of the watch-loop CPU measurement, s")
    parser.add_argument("--doc", type=Path, default=REPO / "docs" / "BENCHMARKS.md")
    parser.add_argument("--quick", action="store_true",
                        help="tiny counts, to check the scripts work (figures meaningless)")
    args = parser.parse_args(argv)
    if args.quick:
        args.duration, args.memory_requests, args.memory_budget_s = 2.0, 50, 5.0
        args.startups, args.calls, args.predict_calls, args.ceiling_rounds = 1, 30, 5, 1
        args.watch_seconds = 5.0
    if not wrk_available():
        raise SystemExit("wrk not found: sudo apt-get install wrk")
    args.tflite_model = args.tflite_model.resolve()
    args.keras_model = (args.keras_model or default_keras_model(args.tflite_model)).resolve()

    started = time.perf_counter()
    results: dict = {"started": time.strftime("%Y-%m-%d %H:%M:%S %Z"), "loadavg_before": loadavg(),
                     "machine": machine(), "quick": args.quick,
                     "models": {"tflite": str(args.tflite_model), "keras": str(args.keras_model),
                                "tflite_sha256": servers.sha256(args.tflite_model)},
                     "settings": {k: getattr(args, k) for k in (
                         "duration", "memory_requests", "memory_budget_s", "startups", "calls",
                         "predict_calls", "watch_seconds", "before", "ceiling_rounds")}}
    log(f"models: {args.tflite_model} vs {args.keras_model}; load {results['loadavg_before']}")
    uploads = write_uploads(OUT / "uploads", args.mnist_dir)
    results["uploads"] = {k: {"file": p.name, "bytes": p.stat().st_size}
                          for k, p in uploads.items()}
    results["uploads_digit"] = digit_label(args.mnist_dir)
    results["inference"] = inference(args)
    results["startup_s"], results["startup_cpu_s"] = startup(args)
    results["http"] = {}
    for name, command in commands(args).items():
        port = servers.free_port()
        results["http"][name] = serve_and_load(name, command(port), port, uploads, args)
    log("HTTP ceiling: the product against a bare FastAPI endpoint"
        + (f" and itself at {args.before}" if args.before else ""))
    results["ceiling"] = http_ceiling.measure(args.tflite_model, args.mnist_dir,
                                              args.ceiling_rounds, args.duration, args.before)
    log("frame path: a picture to a reading on one thread, today against "
        + (args.before or frame_path.BASELINE_COMMIT[:10]))
    results["frame_path"] = frame_path.measure(
        args.mnist_dir, args.tflite_model, args.before or frame_path.BASELINE_COMMIT,
        rounds=1 if args.quick else 5, repeats=3 if args.quick else 20)
    log("watch loop CPU at 2 fps with MQTT, against the idle service")
    results["watch"] = watch_cpu.measure(args.tflite_model, args.mnist_dir, args.watch_seconds,
                                         fps=2.0)
    results["training"] = training(args.tflite_model)
    results["loadavg_after"] = loadavg()
    results["wall_s"] = round(time.perf_counter() - started, 1)
    (OUT / "results.json").write_text(json.dumps(results, indent=2, default=str))
    log(f"done in {results['wall_s']} s; load {results['loadavg_after']}")

    from bench.report import write_report

    write_report(results, args.doc)
    log(f"wrote {args.doc}")


if __name__ == "__main__":
    main()
