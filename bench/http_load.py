"""Drive POST /predict with wrk (a C load generator) and read its counts and latency percentiles.

    python -m bench.http_load --url http://127.0.0.1:8000 --file digit.png -c 8 -d 10

wrk runs `bench/wrk_multipart.lua`, which sends the file as multipart field `file`, exactly like
`curl -F file=@digit.png`. Install wrk with `sudo apt-get install wrk`.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
from pathlib import Path

SCRIPT = Path(__file__).resolve().parent / "wrk_multipart.lua"
MAX_WRK_THREADS = 2  # this machine and a Pi 3/Zero 2 have few cores: leave them to the server


def wrk_available() -> bool:
    return shutil.which("wrk") is not None


def run_wrk(url: str, upload: Path, concurrency: int, duration_s: float,
            timeout_s: float = 60.0) -> dict:
    """One wrk run of POST /predict: `concurrency` connections for `duration_s` seconds.

    Returns wrk's summary: requests, requests_per_s, errors and latency in ms (p50, p90, p99).
    """
    if not wrk_available():
        raise SystemExit("wrk not found: sudo apt-get install wrk")
    threads = min(MAX_WRK_THREADS, concurrency)
    env = dict(os.environ, BENCH_FILE=str(upload))
    command = ["wrk", "-t", str(threads), "-c", str(concurrency), "-d", f"{duration_s:g}s",
               "--timeout", f"{timeout_s:g}s", "-s", str(SCRIPT), url.rstrip("/") + "/predict"]
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    line = next((ln for ln in done.stdout.splitlines() if ln.startswith("BENCH_JSON ")), None)
    if done.returncode != 0 or line is None:
        raise RuntimeError(f"wrk failed ({done.returncode}): {done.stderr or done.stdout}")
    raw = json.loads(line.removeprefix("BENCH_JSON "))
    seconds = raw["duration_us"] / 1e6
    errors = sum(raw["errors"].values())
    return {
        "concurrency": concurrency,
        "requests": raw["requests"],
        "seconds": round(seconds, 3),
        "requests_per_s": round(raw["requests"] / seconds, 2) if seconds else 0.0,
        "errors": errors,
        "error_kinds": raw["errors"],
        "latency_ms": {k: round(v / 1000, 2) for k, v in raw["latency_us"].items()},
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", required=True, help="the service, e.g. http://127.0.0.1:8000")
    parser.add_argument("--file", type=Path, required=True, help="the image to upload")
    parser.add_argument("-c", "--concurrency", type=int, default=8)
    parser.add_argument("-d", "--duration", type=float, default=10.0, help="seconds")
    args = parser.parse_args(argv)
    print(json.dumps(run_wrk(args.url, args.file, args.concurrency, args.duration)))


if __name__ == "__main__":
    main()
