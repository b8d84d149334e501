"""docs/BENCHMARKS.md and its plots from one run's bench/out/results.json.

    python -m bench.report [bench/out/results.json]   # re-render without re-measuring
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PLOTS = "bench"  # docs/bench/, beside the report
COLOURS = {"product": "#2a7ab0", "baseline": "#c0504d"}


def _ratio(a: float, b: float) -> str:
    return f"{a / b:.1f}×" if b else "n/a"


def _fraction(a: float, b: float) -> str:
    """a as a fraction of b, e.g. '1/12.3' when a is 12.3 times smaller."""
    return f"1/{b / a:.1f}" if a else "n/a"


def _run(results: dict, name: str, image: str, concurrency: int) -> dict:
    return next(r for r in results["http"][name]["runs"]
                if r["image"] == image and r["concurrency"] == concurrency)


def _shown(path: str) -> str:
    """A path relative to the repository when it is inside it."""
    return str(Path(path).relative_to(REPO)) if path.startswith(str(REPO)) else path


def _median(values: list[float]) -> float:
    ordered = sorted(values)
    mid = len(ordered) // 2
    return ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2


def headline(results: dict) -> list[dict]:
    """The four must-show figures: measured values, ratio, target and whether it was met."""
    product, baseline = (_run(results, n, "png", 8) for n in ("product", "baseline"))
    rss = {n: results["http"][n]["memory_after_load"]["VmRSS"] / 1024 for n in results["http"]}
    served = {n: results["http"][n]["served"] for n in results["http"]}
    start = {n: _median(v) for n, v in results["startup_s"].items()}
    return [
        {"what": "HTTP throughput, 28×28 PNG, 8 connections",
         "product": f"{product['requests_per_s']:.1f} req/s",
         "baseline": f"{baseline['requests_per_s']:.1f} req/s",
         "ratio": _ratio(product["requests_per_s"], baseline["requests_per_s"]),
         "target": "≥ 10×",
         "met": product["requests_per_s"] >= 10 * baseline["requests_per_s"]},
        {"what": "p99 latency, 28×28 PNG, 8 connections",
         "product": f"{product['latency_ms']['p99']:.1f} ms",
         "baseline": f"{baseline['latency_ms']['p99']:.1f} ms",
         "ratio": _fraction(product["latency_ms"]["p99"], baseline["latency_ms"]["p99"]),
         "target": "≤ 1/10",
         "met": product["latency_ms"]["p99"] * 10 <= baseline["latency_ms"]["p99"]},
        {"what": "resident memory (VmRSS) after the load",
         "product": f"{rss['product']:.0f} MiB after {served['product']:,} requests",
         "baseline": f"{rss['baseline']:.0f} MiB after {served['baseline']:,} requests",
         "ratio": _fraction(rss["product"], rss["baseline"]),
         "target": "≤ 1/4", "met": rss["product"] * 4 <= rss["baseline"]},
        {"what": "start-up to /readyz 200 (median)",
         "product": f"{start['product']:.2f} s", "baseline": f"{start['baseline']:.2f} s",
         "ratio": _fraction(start["product"], start["baseline"]),
         "target": "≤ 1/5", "met": start["product"] * 5 <= start["baseline"]},
    ]


def _plots(results: dict, folder: Path) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    folder.mkdir(parents=True, exist_ok=True)
    names = []

    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    labels = [f"{image.upper()}\nc={c}" for image in ("png", "jpeg") for c in (1, 8, 32)]
    for ax, metric, title in ((axes[0], "requests_per_s", "requests/s (log)"),
                              (axes[1], "p99", "p99 latency, ms (log)")):
        for offset, name in ((-0.2, "product"), (0.2, "baseline")):
            runs = [_run(results, name, image, c) for image in ("png", "jpeg") for c in (1, 8, 32)]
            values = [r["requests_per_s"] if metric == "requests_per_s"
                      else r["latency_ms"]["p99"] for r in runs]
            ax.bar([i + offset for i in range(len(runs))], values, width=0.4, label=name,
                   color=COLOURS[name])
        ax.set_yscale("log")
        ax.set_xticks(range(len(labels)), labels, fontsize=8)
        ax.set_title(title)
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(folder / "http.png", dpi=110)
    names.append("http.png")

    fig, ax = plt.subplots(figsize=(6, 3.5))
    for name, data in results["http"].items():
        points = [[0, data["memory_after_start"]["VmRSS"]], *data["rss_kib"]]
        ax.plot([p[0] for p in points], [p[1] / 1024 for p in points], marker=".", label=name,
                color=COLOURS[name])
    ax.set_xlabel("requests answered")
    ax.set_ylabel("VmRSS, MiB")
    ax.set_ylim(bottom=0)
    ax.set_title("resident memory while serving")
    ax.legend()
    fig.tight_layout()
    fig.savefig(folder / "memory.png", dpi=110)
    names.append("memory.png")

    fig, ax = plt.subplots(figsize=(7, 3.5))
    engines = [row["engine"] for row in results["inference"][0]["rows"]]
    for offset, block in ((-0.2, results["inference"][0]), (0.2, results["inference"][-1])):
        medians = {row["engine"]: row["median_us"] for row in block["rows"]}
        ax.bar([i + offset for i in range(len(engines))], [medians.get(e, 0) for e in engines],
               width=0.4, label=f"{block['threads']} thread(s)")
    ax.set_yscale("log")
    ax.set_xticks(range(len(engines)), [e.replace(" ", "\n", 1) for e in engines], fontsize=8)
    ax.set_ylabel("µs per digit, median (log)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(folder / "inference.png", dpi=110)
    names.append("inference.png")
    plt.close("all")
    return names


def _stage_note(answers: dict) -> list[str]:
    """Where the product's time went, from its own timings_ms for the first request of each."""
    stages = {k: a.get("timings_ms") for k, a in answers.items() if a.get("timings_ms")}
    if not stages:
        return []
    shown = "; ".join(
        f"{kind}: " + ", ".join(f"{stage} {ms:.1f} ms" for stage, ms in timings.items())
        for kind, timings in stages.items())
    return [f"- The product's own stage timings for its first request of each upload ({shown}): "
            "`capture` is decoding the upload, `preprocess` the camera-grade digit search "
            "(threshold, line removal, components, MNIST-style re-rendering) that the baseline "
            "skips, `inference` the int8 model."]


WATCH_HEADING = "## Watch loop: CPU at 2 fps with MQTT"


def watch_section(watch: dict) -> list[str]:
    """The watch loop's CPU figures (bench/watch_cpu.py), a section of its own."""
    lines = [WATCH_HEADING, ""]
    if "skipped" in watch:
        return [*lines, f"Not measured: {watch['skipped']}.", ""]
    share, cpu = watch["share"], watch["cpu_s"]
    lines += [
        f"Measured by `bench/watch_cpu.py` (started {watch['started']}; load average after: "
        f"{watch['loadavg']}). Two services side by side on the same video-file camera "
        f"({watch['video']}) and a local Mosquitto: **idle** reads nothing; **watch** has "
        f"`DIGITS_MQTT_URL` set, so its watch loop reads the camera at {watch['fps']:g} fps, "
        "keeps the stable reading and publishes each change. CPU time (user + system, from "
        f"`/proc/PID/stat`) over one and the same {watch['window_s']:.0f} s window after a "
        "warm-up:",
        "",
        "| process | CPU s in the window | share of one core |",
        "|---|---|---|",
        f"| idle service | {cpu['idle']:.2f} | {share['idle']:.2%} |",
        f"| watch service, {watch['fps']:g} fps + MQTT | {cpu['watch']:.2f} | "
        f"{share['watch']:.2%} |",
        f"| mosquitto (both services' broker) | {cpu['mosquitto']:.2f} | "
        f"{share['mosquitto']:.2%} |",
        "",
        f"**Watch loop at {watch['fps']:g} fps with MQTT on: {watch['ratio']}× the idle "
        f"service's CPU** ({share['watch']:.1%} against {share['idle']:.2%} of one core). "
        f"It read {watch['frames_watched']} frames in the window "
        f"({watch['cpu_ms_per_frame']} ms of CPU per frame above idle: capture, MJPG decode, "
        f"the digit search and the model) and handed {watch['mqtt_messages']} messages to the "
        f"broker (connected at the end: {'yes' if watch['mqtt_connected'] else '**no**'}). The "
        "idle service's own CPU is its timers: the camera loop's 0.25 s idle tick and the "
        "event-loop lag probe.",
        "",
    ]
    return lines


def replace_section(doc: str, heading: str, lines: list[str]) -> str:
    """`doc` with the section under `heading` replaced (or added before the notes) by `lines`,
    which start with that heading: one benchmark re-run without re-running them all."""
    section = "\n".join(lines)
    start = doc.find(heading)
    if start >= 0:
        end = doc.find("\n## ", start + len(heading))
        return doc[:start] + section + ("\n" + doc[end + 1:] if end >= 0 else "")
    notes = doc.find("## Notes")
    if notes < 0:
        return doc.rstrip("\n") + "\n\n" + section
    return doc[:notes] + section + "\n" + doc[notes:]


def replace_watch_section(doc: str, watch: dict) -> str:
    """`doc` with its watch section replaced (or added before the notes) by one for `watch`."""
    return replace_section(doc, WATCH_HEADING, watch_section(watch))


CEILING_HEADING = "## HTTP ceiling: the product against a bare FastAPI endpoint"


def _mib(kib: int) -> str:
    return f"{kib / 1024:.1f} MiB"


def ceiling_section(ceiling: dict) -> list[str]:
    """The product against the bare endpoint (bench/http_ceiling.py), a section of its own."""
    services, reader = ceiling["services"], ceiling["reader_ms"]
    product, bare = services["product"], services["bare"]
    before = services.get("before")
    share_met = ceiling["share"] >= 0.5
    p99_met = ceiling["p99_ratio"] <= 3.0
    lines = [
        CEILING_HEADING, "",
        f"Measured by `bench/http_ceiling.py` (started {ceiling['started']}; load average "
        f"before: {ceiling['loadavg_before']}, after: {ceiling['loadavg_after']}). Side by side, "
        "each in its own uvicorn process on loopback: **product** (`python -m device serve "
        "--camera none`) and **bare** (`bench/bare_service.py`: FastAPI `UploadFile`, reads the "
        "bytes, answers `{\"bytes\": N}`; the most any endpoint that receives this upload can "
        "do on this stack)"
        + ", **bare_model** (the same endpoint with `--model`: it also decodes the upload and "
        "runs the product's model on it once)"
        + (f", and **before**: the product at commit `{ceiling['before']['commit'][:12]}` "
           f"(`--before {ceiling['before']['rev']}`), same model" if before else "")
        + f". Each answered `{ceiling['upload']['file']}` ({ceiling['upload']['bytes']} bytes) "
        f"at {ceiling['connections']} connections, {ceiling['rounds']} wrk runs of "
        f"{ceiling['duration_s']:g} s in alternating order; figures are medians over the runs.",
        "",
        "| 28×28 PNG, 8 connections | product | bare FastAPI | product vs bare | target | met |",
        "|---|---|---|---|---|---|",
        f"| requests/s | {product['requests_per_s']:.1f} | {bare['requests_per_s']:.1f} | "
        f"{ceiling['share']:.1%} | ≥ 50% | {'yes' if share_met else '**no**'} |",
        f"| p99 latency | {product['p99_ms']:.1f} ms | {bare['p99_ms']:.1f} ms | "
        f"{ceiling['p99_ratio']:.1f}× | ≤ 3× | {'yes' if p99_met else '**no**'} |",
    ]
    if before:
        ratio = ceiling["peak_rss_ratio"]
        lines += [
            "", "| the same load | product | before | product vs before | target | met |",
            "|---|---|---|---|---|---|",
            f"| peak resident memory (VmHWM) | {_mib(product['memory_kib']['VmHWM'])} | "
            f"{_mib(before['memory_kib']['VmHWM'])} | {ratio:.3f}× | ≤ 1× | "
            f"{'yes' if ratio <= 1 else '**no**'} |",
            f"| requests/s | {product['requests_per_s']:.1f} | {before['requests_per_s']:.1f} | "
            f"{_ratio(product['requests_per_s'], before['requests_per_s'])} | | |",
            f"| p99 latency | {product['p99_ms']:.1f} ms | {before['p99_ms']:.1f} ms | "
            f"{product['p99_ms'] / before['p99_ms']:.2f}× | | |",
        ]
    lines += ["", "| service | req/s per run | p50 ms | p99 ms | errors | VmHWM after | "
              "server CPU µs per request |",
              "|---|---|---|---|---|---|---|"]
    for name, data in services.items():
        per_run = ", ".join(f"{r['requests_per_s']:.0f}" for r in data["rounds"])
        cpu = data.get("server_cpu_us_per_request")
        lines.append(f"| {name} | {per_run} | {data['p50_ms']:.1f} | {data['p99_ms']:.1f} | "
                     f"{data['errors']} | {_mib(data['memory_kib']['VmHWM'])} | "
                     f"{'' if cpu is None else f'{cpu:.0f}'} |")
    if "cpu_share" in ceiling:
        lines += [
            "",
            f"Each server's own CPU time (user + system, from /proc) per answered request: "
            f"product {product['server_cpu_us_per_request']:.0f} µs, bare "
            f"{bare['server_cpu_us_per_request']:.0f} µs ({ceiling['cpu_share']:.1%}). Where "
            "this matches the requests/s share, each server kept its core busy throughout: the "
            "gap is CPU work per request, not waiting.",
        ]
    with_model = services["bare_model"]
    model_share = ceiling["model_share"]
    overtaken = product["requests_per_s"] > with_model["requests_per_s"]
    where = (
        f"Where the product's time goes: at {ceiling['connections']} connections it takes "
        f"{1000 / product['requests_per_s']:.2f} ms per request, the bare endpoint "
        f"{1000 / bare['requests_per_s']:.2f} ms. The bare endpoint that also decodes the upload "
        f"and runs the same model once (**bare_model**) takes "
        f"{1000 / with_model['requests_per_s']:.2f} ms: {model_share:.1%} of the bare endpoint's "
        "requests/s"
        + ("" if overtaken else " is about the most an endpoint that runs this model can do here")
        + (", below the target before anything else the product does: on this machine the "
           "model, not the HTTP path, sets the pace" if model_share < 0.5 else "")
        + f". The product answered {product['requests_per_s'] / with_model['requests_per_s']:.1%}"
        " of its requests/s"
        + (" (more than the endpoint whose model runs the same way: their gap is within this "
           "machine's run-to-run spread, the wrk runs above)" if overtaken else "")
        + (f" and spent {product['server_cpu_us_per_request']:.0f} µs of CPU a request against "
           f"its {with_model['server_cpu_us_per_request']:.0f} µs"
           if "server_cpu_us_per_request" in product and "server_cpu_us_per_request" in with_model
           else "")
        + "; what the product spends beyond is its reading of the picture (the checks that "
        "decide how to read it, the answer with its probabilities, metrics and the log line). "
        "The product's own "
        f"`timings_ms` for this upload (medians of {ceiling['reader_requests']} sequential "
        f"warm-up requests, one at a time, so with warm caches): decode {reader['capture']:.2f} "
        f"ms, preprocess {reader['preprocess']:.2f} ms, inference {reader['inference']:.2f} ms."
    )
    return [*lines, "", where, ""]


def replace_ceiling_section(doc: str, ceiling: dict) -> str:
    """`doc` with its HTTP ceiling section replaced (or added before the notes)."""
    return replace_section(doc, CEILING_HEADING, ceiling_section(ceiling))


def _phase_sections(results: dict) -> list[str]:
    """The sections whose phases also run on their own (and rewrite just their section)."""
    lines = []
    from bench.frame_path import frame_section

    for key, section in (("ceiling", ceiling_section), ("frame_path", frame_section),
                         ("watch", watch_section)):
        if results.get(key):
            lines += ["", *section(results[key])[:-1]]
    return lines


def render(results: dict) -> str:
    m = results["machine"]
    http = results["http"]
    lines = [
        "# Benchmarks: the product against what a notebook user would build",
        "",
        "Generated by `bench/run_all.py` in one run"
        + (" **with --quick (tiny counts: figures meaningless)**" if results.get("quick") else "")
        + f", started {results['started']}, {results['wall_s']:.0f} s of wall time. "
        "Every ratio below compares figures from this same run. Re-render with "
        "`python -m bench.report`; how to run it (also on a Pi): [bench/README.md]"
        "(../bench/README.md).",
        "",
        "**The baseline** (`bench/baseline_service.py`) is what the classroom notebooks lead to: "
        "FastAPI, `keras.models.load_model` once at start-up, and per request Pillow decode → "
        "grey → resize to 28×28 → invert → `model.predict`, behind the same `POST /predict` "
        "(multipart `file`) and `GET /readyz`. Both services run on uvicorn in one process with "
        "the same settings (no access log, asyncio's event loop, httptools parsing HTTP), on "
        "loopback; the product with `--camera none` (uploads only) and its default JSON log "
        "line per request.",
        "",
        "## Machine and load",
        "",
        f"- CPU: {m['cpu']}, {m['cores']} cores available, {m['memory_gib']} GiB RAM, "
        f"{m['machine']}, Linux {m['kernel']}",
        f"- Python {m['python']}; "
        + ", ".join(f"{k} {v}" for k, v in m["packages"].items() if v),
        f"- Load generator: {m['wrk']} (`bench/wrk_multipart.lua`, at most 2 threads), on the "
        "same cores as the servers",
        f"- Load average (1/5/15 min) before: {results['loadavg_before']}; after: "
        f"{results['loadavg_after']}. The run itself keeps about 1-2 of the cores "
        "busy; more than that means other work shared the machine, which makes absolute figures "
        "pessimistic and noisy. Both services paid the same noise, and the ratios are what this "
        "page claims.",
        f"- Models: product `{Path(results['models']['tflite']).name}` (sha256 "
        f"`{results['models']['tflite_sha256'][:12]}…`), baseline "
        f"`{_shown(results['models']['keras'])}` (the float Keras model it was converted from).",
        "",
        "## Headline (the issue's must-show figures)",
        "",
        "| | product | baseline | product vs baseline | target | met |",
        "|---|---|---|---|---|---|",
    ]
    for row in headline(results):
        lines.append(f"| {row['what']} | {row['product']} | {row['baseline']} | {row['ratio']} | "
                     f"{row['target']} | {'yes' if row['met'] else '**no**'} |")
    served = {n: http[n]["served"] for n in http}
    target = results["settings"]["memory_requests"]
    if served["baseline"] < target:
        minutes = target / max(_run(results, "baseline", "png", 8)["requests_per_s"], 0.01) / 60
        lines += ["", f"The baseline could not answer {target:,} requests inside the run's time "
                  f"cap ({results['settings']['memory_budget_s']:.0f} s of top-up): at its "
                  f"speed here that would take over {minutes:.0f} minutes. Its memory is therefore "
                  f"read after {served['baseline']:,} requests "
                  f"and the product's after {served['product']:,}: the comparison favours the "
                  "baseline (a server's resident set does not shrink with more requests; see the "
                  "memory plot). `--memory-budget-s 0` lifts the cap for a full-count run."]
    lines += ["", "## HTTP: POST /predict", "",
              f"wrk, {results['settings']['duration']:g} s per cell, after a drain so no cell "
              "pays for the previous one's queue. Uploads: "
              + ", ".join(f"`{u['file']}` ({u['bytes']:,} bytes)"
                          for u in results["uploads"].values())
              + ". Each service's answers to them: "
              + "; ".join(f"{n}: " + ", ".join(
                  f"{k} → {a['digit']} ({a['confidence']:.3f})" if a["digit"] is not None
                  else f"{k} → {a['status']} no digit" for k, a in http[n]["answers"].items())
                  for n in http) + ".", "",
              "| image | connections | product req/s | baseline req/s | ratio "
              "| product p50 / p99 ms | baseline p50 / p99 ms | p99 ratio "
              "| errors (product / baseline) |",
              "|---|---|---|---|---|---|---|---|---|"]
    for image in ("png", "jpeg"):
        for c in (1, 8, 32):
            p, b = _run(results, "product", image, c), _run(results, "baseline", image, c)
            lines.append(
                f"| {image.upper()} | {c} | {p['requests_per_s']:.1f} | {b['requests_per_s']:.1f} "
                f"| {_ratio(p['requests_per_s'], b['requests_per_s'])} | "
                f"{p['latency_ms']['p50']:.1f} / {p['latency_ms']['p99']:.1f} | "
                f"{b['latency_ms']['p50']:.1f} / {b['latency_ms']['p99']:.1f} | "
                f"{_fraction(p['latency_ms']['p99'], b['latency_ms']['p99'])} | "
                f"{p['errors']} / {b['errors']} |")
    lines += ["", "Few baseline requests complete in a cell at 32 connections, and wrk only "
              "times the ones that complete, so the baseline's p99 there is if anything too kind.",
              "", "![HTTP throughput and p99](bench/http.png)", "",
              "## Memory", "",
              "| | VmRSS after start | VmRSS after the load | peak (VmHWM) | requests answered |",
              "|---|---|---|---|---|"]
    for name, data in http.items():
        lines.append(f"| {name} | {data['memory_after_start']['VmRSS'] / 1024:.0f} MiB | "
                     f"{data['memory_after_load']['VmRSS'] / 1024:.0f} MiB | "
                     f"{data['memory_after_load']['VmHWM'] / 1024:.0f} MiB | "
                     f"{data['served']:,} |")
    lines += ["", "One process per service answers the whole HTTP table above (both images, all "
              "concurrencies), then 28×28 PNGs at 8 connections until it has answered "
              f"{target:,} requests or the top-up cap is reached; VmRSS is read from "
              "`/proc/PID/status` after each wrk run and once the server is idle again.", "",
              "![resident memory](bench/memory.png)", "",
              "## Start-up", "",
              "Process start (`python -m device serve` / `python bench/baseline_service.py`) to "
              "the first `GET /readyz` 200, alternating the two services, "
              f"{len(results['startup_s']['product'])} times each:", "",
              "| | runs (s) | median (s) | fastest (s) | CPU used by then, median (s) |",
              "|---|---|---|---|---|"]
    cpu = results.get("startup_cpu_s", {})
    for name, times in results["startup_s"].items():
        used = f"{_median(cpu[name]):.2f}" if cpu.get(name) else "n/a"
        lines.append(f"| {name} | {', '.join(f'{t:.2f}' for t in times)} | {_median(times):.2f} "
                     f"| {min(times):.2f} | {used} |")
    lines += ["", "The headline uses the medians. The product's start-up is almost all Python "
              "imports (FastAPI and pydantic ≈ 0.3 s, numpy, OpenCV, LiteRT; profiled with py-spy "
              "and `-X importtime`), so any other load on the machine lands on it in full; the "
              "CPU column is what each process itself spent, which other load does not inflate."]
    lines += ["", "## Inference per digit", "",
              "One digit per call (what a service does per request), MNIST test digits, wall "
              "time per call after 20 warm-up calls. `int8 LiteRT` is the product's "
              "`DigitModel.predict` including quantize/dequantize, with the model's first look "
              "where its sidecar names one (most digits are then answered by the small member "
              "alone, the rest by the whole model); `float32 TFLite` is the same "
              "Keras model converted without quantization; `Keras tf.function` is "
              "`tf.function(lambda x: model(x, training=False), jit_compile=False)`.", "",
              "| engine | threads | calls | median µs | p99 µs | median vs model.predict |",
              "|---|---|---|---|---|---|"]
    for block in results["inference"]:
        predict = next((r["median_us"] for r in block["rows"]
                        if r["engine"] == "Keras model.predict"), None)
        for row in block["rows"]:
            versus = _fraction(row["median_us"], predict) if predict else "n/a"
            lines.append(f"| {row['engine']} | {block['threads']} | {row['calls']:,} | "
                         f"{row['median_us']:,.1f} | {row['p99_us']:,.1f} | {versus} |")
    lines += ["", "![µs per digit](bench/inference.png)", "", "## Training", ""]
    t = results.get("training")
    if t:
        lines.append(f"The recipe ({t.get('arch')}, {t.get('params') or '?'} parameters, "
                     f"{t.get('epochs_run')} epochs) trained in **{t['train_seconds']:.0f} s** "
                     f"of wall time to {t['test_accuracy']:.2%} MNIST test accuracy "
                     f"(read from {t['source']}; not retrained by this run; trained on this "
                     "machine).")
    else:
        lines.append("No training record found (the sidecar or runs/default/metrics.json).")
    truth = results.get("uploads_digit")
    notes = []
    if truth is not None:
        said = {n: http[n]["answers"]["jpeg"]["digit"] for n in http}
        notes.append(
            f"- Both uploads show a {truth}. On the 1080p photo the baseline answers "
            f"{said['baseline']} and the product {said['product']}: resizing a whole photo to "
            "28×28 leaves nothing of the digit, so the baseline's photo figures measure a "
            "service that cannot read photos; the product spends its time on the photo finding "
            "the digit (grey conversion, flat-field, threshold, components) before one "
            "inference.")
    lines += _phase_sections(results)
    lines += ["", "## Notes", "", *notes,
              *_stage_note(http["product"]["answers"]),
              "- The baseline's time is almost all `model.predict`, which builds a data pipeline "
              "per call; `predict_on_batch` or a `tf.function` would be far faster (see the "
              "inference table) but is not what the notebooks teach, and would still carry "
              "TensorFlow's memory and start-up.",
              ""]
    return "\n".join(lines)


def write_report(results: dict, doc: Path) -> None:
    _plots(results, doc.parent / PLOTS)
    doc.parent.mkdir(parents=True, exist_ok=True)
    doc.write_text(render(results))


def main() -> None:
    source = Path(sys.argv[1]) if len(sys.argv) > 1 else REPO / "bench" / "out" / "results.json"
    write_report(json.loads(source.read_text()), REPO / "docs" / "BENCHMARKS.md")


if __name__ == "__main__":
    main()
