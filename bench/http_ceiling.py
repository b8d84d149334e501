"""The product's HTTP path against its ceilings, a bare FastAPI multipart endpoint without and
with the model, in one run.

    .venv/bin/python -m bench.http_ceiling [--before REV] [--rounds 3] [--duration 15]

Starts, each in its own process on loopback with the same uvicorn settings:

  product     `python -m device serve --camera none`, this tree
  bare        `bench/bare_service.py`: FastAPI `UploadFile`, reads the bytes, answers a tiny JSON
  bare_model  the same with `--model`: also decodes the upload and runs the model on it once,
              the ceiling for any endpoint that must run this model
  before      with --before REV: the product as it was at git revision REV (`git archive` into
              bench/out/before/), the same model, for the before/after memory and speed

and drives each with the 28×28 PNG at 8 connections (wrk, `bench/wrk_multipart.lua`), in rounds
whose order alternates, so whatever else the machine does lands on every service; figures are
medians over the rounds. Peak resident memory (VmHWM) is read after the load. Warming up, the
product answers sequential uploads whose own `timings_ms` say what the reader alone costs.
Writes bench/out/http_ceiling.json and the "HTTP ceiling" section of docs/BENCHMARKS.md
(bench.run_all runs it too, as one of its phases).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench import servers  # noqa: E402
from bench.http_load import run_wrk  # noqa: E402
from bench.images import default_mnist_dir, write_uploads  # noqa: E402
from bench.revision import export_revision  # noqa: E402

OUT = REPO / "bench" / "out"
CONNECTIONS = 8
WARM_UP_REQUESTS = 50  # sequential: imports settle, and the product's stage timings are sampled
STAGES = ("capture", "preprocess", "inference", "total")


def bare_command(port: int, model: Path | None = None) -> list[str]:
    return [sys.executable, str(REPO / "bench" / "bare_service.py"), "--host", "127.0.0.1",
            "--port", str(port), *(["--model", str(model)] if model else [])]


def _warm_up(server: servers.Server, upload: Path) -> list[dict]:
    """WARM_UP_REQUESTS sequential uploads; the product's timings_ms of each (others: none)."""
    timings = []
    for _ in range(WARM_UP_REQUESTS):
        status, body = servers.post_image(server.url, upload)
        if status != 200:
            raise RuntimeError(f"{server.name} answered {status} to the warm-up: {body}")
        if "timings_ms" in body:
            timings.append(body["timings_ms"])
    return timings


def _summary(runs: list[dict]) -> dict:
    return {
        "requests_per_s": round(statistics.median(r["requests_per_s"] for r in runs), 1),
        "p50_ms": round(statistics.median(r["latency_ms"]["p50"] for r in runs), 2),
        "p99_ms": round(statistics.median(r["latency_ms"]["p99"] for r in runs), 2),
        "server_cpu_us_per_request": round(
            statistics.median(r["server_cpu_us_per_request"] for r in runs), 1),
        "errors": sum(r["errors"] for r in runs),
    }


def measure(model: Path, mnist_dir: Path, rounds: int, duration_s: float,
            before: str | None = None) -> dict:
    """Product, bare endpoint (and the product at `before`) side by side; see the docstring."""
    upload = write_uploads(OUT / "uploads", mnist_dir)["png"]
    started_at = time.strftime("%Y-%m-%d %H:%M:%S %Z")
    loadavg_before = " ".join(Path("/proc/loadavg").read_text().split()[:3])
    # name → (the command for a port, the source tree it runs in)
    plan: dict[str, tuple[Callable[[int], list[str]], Path]] = {
        "product": (lambda port: servers.product_command(model, port), REPO)}
    commit = None
    if before:
        commit, tree = export_revision(before, OUT / "before")
        plan["before"] = (lambda port: servers.product_command(model, port), tree)
    plan["bare"] = (bare_command, REPO)
    plan["bare_model"] = (lambda port: bare_command(port, model), REPO)
    running: dict[str, servers.Server] = {}
    try:
        for name, (command, cwd) in plan.items():
            port = servers.free_port()
            running[name] = servers.start(name, command(port), port,
                                          OUT / "logs" / f"ceiling_{name}.log", cwd=cwd)
        stage_samples = {name: _warm_up(server, upload) for name, server in running.items()}
        runs: dict[str, list[dict]] = {name: [] for name in running}
        for round_number in range(rounds):
            order = list(running) if round_number % 2 == 0 else list(running)[::-1]
            for name in order:
                running[name].wait_idle()
                cpu_before = running[name].cpu_seconds()
                run = run_wrk(running[name].url, upload, CONNECTIONS, duration_s)
                # The server's own CPU per answered request: what wall-clock req/s becomes on
                # a machine whose other tenants take a share of the cores.
                cpu = running[name].cpu_seconds() - cpu_before
                run["server_cpu_us_per_request"] = round(cpu / max(1, run["requests"]) * 1e6, 1)
                runs[name].append(run)
        memory = {name: server.memory_kib() for name, server in running.items()}
    finally:
        for server in running.values():
            server.stop()
    services = {name: {**_summary(runs[name]), "rounds": runs[name], "memory_kib": memory[name]}
                for name in running}
    reader = {stage: round(statistics.median(t[stage] for t in stage_samples["product"]), 3)
              for stage in STAGES}
    product, bare = services["product"], services["bare"]
    result = {
        "started": started_at,
        "loadavg_before": loadavg_before,
        "loadavg_after": " ".join(Path("/proc/loadavg").read_text().split()[:3]),
        "upload": {"file": upload.name, "bytes": upload.stat().st_size},
        "connections": CONNECTIONS,
        "rounds": rounds,
        "duration_s": duration_s,
        "before": {"rev": before, "commit": commit} if before else None,
        "services": services,
        "reader_ms": reader,
        "reader_requests": len(stage_samples["product"]),
        "share": round(product["requests_per_s"] / bare["requests_per_s"], 4),
        "p99_ratio": round(product["p99_ms"] / bare["p99_ms"], 2),
        "cpu_share": round(bare["server_cpu_us_per_request"]
                           / product["server_cpu_us_per_request"], 4),
        "model_share": round(services["bare_model"]["requests_per_s"] / bare["requests_per_s"], 4),
    }
    if before:
        result["peak_rss_ratio"] = round(
            product["memory_kib"]["VmHWM"] / services["before"]["memory_kib"]["VmHWM"], 4)
    return result


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=Path, default=REPO / "models" / "digitnet_int8.tflite")
    parser.add_argument("--mnist-dir", type=Path, default=default_mnist_dir())
    parser.add_argument("--before", metavar="REV",
                        help="also serve the product as it was at this git revision")
    parser.add_argument("--rounds", type=int, default=3, help="wrk runs per service")
    parser.add_argument("--duration", type=float, default=15.0, help="seconds per wrk run")
    parser.add_argument("--doc", type=Path, default=REPO / "docs" / "BENCHMARKS.md")
    args = parser.parse_args(argv)
    result = measure(args.model.resolve(), args.mnist_dir, args.rounds, args.duration,
                     args.before)
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "http_ceiling.json").write_text(json.dumps(result, indent=2))
    print(json.dumps({k: v for k, v in result.items() if k != "services"}, indent=2))

    from bench.report import replace_ceiling_section

    existing = args.doc.read_text() if args.doc.is_file() else ""
    args.doc.write_text(replace_ceiling_section(existing, result))
    print(f"wrote the HTTP ceiling section of {args.doc}")


if __name__ == "__main__":
    main()
