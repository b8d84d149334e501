"""bench/ works: the baseline answers like a service, and the report computes ratios the right way.

No timing is asserted here (speed is measured by bench/run_all.py only).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from bench import report, servers
from bench.images import digit_png, phone_photo
from bench.inference import time_calls


@pytest.fixture(scope="module")
def tiny_keras_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    keras = pytest.importorskip("keras")
    model = keras.Sequential([keras.Input((28, 28, 1)), keras.layers.Flatten(),
                              keras.layers.Dense(10, activation="softmax")])
    path = tmp_path_factory.mktemp("baseline") / "tiny.keras"
    model.save(path)
    return path


def test_baseline_service_reads_an_upload_and_refuses_garbage(tiny_keras_model: Path) -> None:
    from fastapi.testclient import TestClient

    from bench.baseline_service import create_app

    client = TestClient(create_app(tiny_keras_model))
    digit = np.zeros((28, 28), np.uint8)
    digit[6:22, 12:16] = 255
    answer = client.post("/predict", files={"file": ("d.png", digit_png(digit), "image/png")})
    assert answer.status_code == 200
    body = answer.json()
    assert body["digit"] in range(10)
    assert sum(body["probabilities"]) == pytest.approx(1.0, abs=1e-4)
    garbage = client.post("/predict", files={"file": ("x.png", b"not an image", "image/png")})
    assert garbage.status_code == 400
    assert client.get("/readyz").status_code == 200


def test_uploads_are_the_sizes_the_report_names() -> None:
    import cv2

    digit = np.zeros((28, 28), np.uint8)
    photo = cv2.imdecode(np.frombuffer(phone_photo(digit), np.uint8), cv2.IMREAD_COLOR)
    assert photo.shape == (1080, 1920, 3)
    png = cv2.imdecode(np.frombuffer(digit_png(digit), np.uint8), cv2.IMREAD_UNCHANGED)
    assert png.shape == (28, 28)
    assert png.min() == 255  # an empty page: dark ink on white, the polarity users upload


def test_time_calls_counts_every_call() -> None:
    seen = []
    result = time_calls(seen.append, np.zeros((5, 28, 28, 1), np.float32), calls=7)
    assert result["calls"] == 7
    assert len(seen) == 7 + 20  # warm-up calls are made but not timed
    assert 0 <= result["median_us"] <= result["p99_us"]


def test_time_calls_pauses_before_each_timed_call_only(monkeypatch) -> None:
    """--pause-ms idles before every timed call and leaves the idle out of the timing."""
    import bench.inference

    clock = {"now": 0.0}
    slept = []
    monkeypatch.setattr(bench.inference.time, "perf_counter", lambda: clock["now"])

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        clock["now"] += seconds

    monkeypatch.setattr(bench.inference.time, "sleep", sleep)
    result = time_calls(lambda x: None, np.zeros((5, 28, 28, 1), np.float32), calls=4,
                        pause_s=0.05)
    assert slept == [0.05] * 4  # none for the warm-up calls
    assert result["median_us"] == 0.0  # the idle is not timed


def test_two_models_are_timed_in_turns(monkeypatch) -> None:
    """--against: rounds alternate between the two, so a passing load lands on both alike."""
    import bench.inference

    clock = {"now": 0.0}
    order = []
    monkeypatch.setattr(bench.inference.time, "perf_counter", lambda: clock["now"])

    def engine(name: str, cost: float):
        def call(x: np.ndarray) -> None:
            order.append(name)
            clock["now"] += cost
        return call

    ours, theirs = bench.inference.time_alternating(
        engine("a", 1e-4), engine("b", 3e-4), np.zeros((5, 28, 28, 1), np.float32), calls=30,
        rounds=3)
    per_round = 20 + 10  # warm-up and timed calls of one engine in one round
    assert order == (["a"] * per_round + ["b"] * per_round) * 3
    assert ours == {"calls": 30, "median_us": 100.0, "p99_us": 100.0, "vs_second": 0.33}
    assert theirs["median_us"] == 300.0


def _results(product: dict, baseline: dict) -> dict:
    def side(values: dict) -> dict:
        return {"runs": [{"image": "png", "concurrency": 8, "requests_per_s": values["rps"],
                          "latency_ms": {"p99": values["p99"]}}],
                "memory_after_load": {"VmRSS": values["rss_mib"] * 1024},
                "served": 10_000}

    return {"http": {"product": side(product), "baseline": side(baseline)},
            "startup_s": {"product": [product["start"]], "baseline": [baseline["start"]]}}


def test_headline_ratios_point_the_right_way() -> None:
    fast = {"rps": 200.0, "p99": 50.0, "rss_mib": 100.0, "start": 2.0}
    slow = {"rps": 10.0, "p99": 1000.0, "rss_mib": 800.0, "start": 20.0}
    rows = report.headline(_results(fast, slow))
    assert [row["met"] for row in rows] == [True, True, True, True]
    assert [row["ratio"] for row in rows] == ["20.0×", "1/20.0", "1/8.0", "1/10.0"]
    # The same figures the other way round meet none of the targets.
    assert not any(row["met"] for row in report.headline(_results(slow, fast)))
    just_short = dict(slow, rps=20.1, p99=499.0, rss_mib=399.0, start=9.9)
    assert not any(row["met"] for row in report.headline(_results(fast, just_short)))


def test_memory_of_this_process_is_read() -> None:
    import os

    memory = servers.memory_kib(os.getpid())
    assert 0 < memory["VmRSS"] <= memory["VmHWM"]


def _watch(watch_cpu_s: float) -> dict:
    return {"fps": 2.0, "window_s": 120.0, "cpu_s": {"idle": 0.5, "watch": watch_cpu_s,
            "mosquitto": 0.1}, "share": {"idle": 0.5 / 120, "watch": watch_cpu_s / 120,
            "mosquitto": 0.1 / 120}, "ratio": round(watch_cpu_s / 0.5, 1), "frames_watched": 240,
            "mqtt_messages": 24, "mqtt_connected": True, "cpu_ms_per_frame": 25.0,
            "video": "640×480", "loadavg": "1 1 1", "started": "then"}


def test_watch_section_goes_before_the_notes_and_is_replaced_in_place() -> None:
    doc = "# Benchmarks\n\n## Training\n\ntext\n\n## Notes\n\n- a note\n"
    once = report.replace_watch_section(doc, _watch(6.0))
    assert once.index("## Training") < once.index(report.WATCH_HEADING) < once.index("## Notes")
    assert "12.0× the idle service's CPU" in once
    assert report.replace_watch_section(once, _watch(6.0)) == once  # a re-run adds nothing
    again = report.replace_watch_section(once, _watch(9.0))
    assert "18.0×" in again and "12.0×" not in again
    assert again.replace(again[again.index(report.WATCH_HEADING):again.index("## Notes")], "") \
        == doc
    skipped = report.replace_watch_section(doc, {"skipped": "no mosquitto"})
    assert "Not measured: no mosquitto." in skipped


def test_frame_path_compares_two_commits_in_one_run(tmp_path: Path, mnist_dir: Path) -> None:
    """Both sides really run (the earlier commit's device/ out of git), read the same digits,
    and the section lands in the page; no timing is asserted."""
    import json

    from bench import frame_path

    doc = tmp_path / "BENCHMARKS.md"
    doc.write_text("# Benchmarks\n\n## Notes\n\n- a note\n")
    frame_path.main(["--rounds", "1", "--repeats", "1", "--doc", str(doc),
                     "--mnist-dir", str(mnist_dir)])
    page = doc.read_text()
    assert page.index(frame_path.FRAME_HEADING) < page.index("## Notes")
    result = json.loads((frame_path.OUT / "frame_path.json").read_text())
    today, before = result["sides"]["today"], result["sides"]["before"]
    for kind in frame_path.PICTURES:
        assert today[kind]["ms"] > 0 and before[kind]["ms"] > 0
        assert today[kind]["read"] == before[kind]["read"]  # MNIST test digits 7, 2, 1, 0, 4
    assert today["upload 28×28"]["read"] == ["7", "2", "1", "0", "4"]
    assert today[frame_path.JPEG_KIND]["read"] == ["7", "2", "1", "0", "4"]


def test_bare_endpoint_reads_the_upload_and_nothing_else() -> None:
    from fastapi.testclient import TestClient

    from bench.bare_service import create_app

    client = TestClient(create_app())
    answer = client.post("/predict", files={"file": ("d.png", b"x" * 358, "image/png")})
    assert (answer.status_code, answer.json()) == (200, {"bytes": 358})
    assert client.post("/predict", files={"other": ("d.png", b"x", "image/png")}).status_code == 422
    assert client.get("/readyz").status_code == 200


def test_bare_endpoint_with_the_model_reads_the_digit(digit_model_path: Path,
                                                     mnist_dir: Path) -> None:
    """The second ceiling decodes the upload and runs the model: it reads the benchmark's digit
    dark on light (the upload it is sent) and light on dark (MNIST's own)."""
    import cv2
    from fastapi.testclient import TestClient

    from bench.bare_service import create_app
    from bench.images import DIGIT_INDEX, digit_label, mnist_test_images

    digit = mnist_test_images(mnist_dir)[DIGIT_INDEX]
    with TestClient(create_app(digit_model_path)) as client:
        for png in (digit_png(digit), cv2.imencode(".png", digit)[1].tobytes()):
            answer = client.post("/predict", files={"file": ("d.png", png, "image/png")})
            assert (answer.status_code, answer.json()) == (200, {"digit": digit_label(mnist_dir)})


def _ceiling(product_rps: float, product_p99: float, product_peak_mib: float,
             model_rps: float = 800.0) -> dict:
    def service(rps: float, p99: float, peak_mib: float) -> dict:
        return {"requests_per_s": rps, "p50_ms": p99 / 2, "p99_ms": p99, "errors": 0,
                "rounds": [{"requests_per_s": rps}], "memory_kib": {"VmHWM": peak_mib * 1024}}

    services = {"product": service(product_rps, product_p99, product_peak_mib),
                "before": service(200.0, 60.0, 130.0), "bare": service(1000.0, 10.0, 48.0),
                "bare_model": service(model_rps, 12.0, 60.0)}
    return {"started": "then", "loadavg_before": "1 1 1", "loadavg_after": "1 1 1",
            "upload": {"file": "digit_28.png", "bytes": 358}, "connections": 8, "rounds": 1,
            "duration_s": 15.0, "before": {"rev": "main~1", "commit": "0123456789abcdef"},
            "services": services, "share": product_rps / 1000.0,
            "p99_ratio": product_p99 / 10.0, "peak_rss_ratio": product_peak_mib / 130.0,
            "model_share": model_rps / 1000.0,
            "reader_ms": {"capture": 0.1, "preprocess": 3.0, "inference": 0.5, "total": 3.7},
            "reader_requests": 50}


def _met(section: list[str], row: str) -> str:
    line = next(line for line in section if line.startswith(f"| {row} "))
    return line.rstrip(" |").rsplit("| ", 1)[1]


def test_ceiling_targets_point_the_right_way() -> None:
    good = report.ceiling_section(_ceiling(600.0, 25.0, 120.0))
    assert [_met(good, row) for row in ("requests/s", "p99 latency")] == ["yes", "yes"]
    assert _met(good, "peak resident memory (VmHWM)") == "yes"
    assert "| 60.0% |" in next(line for line in good if line.startswith("| requests/s"))
    bad = report.ceiling_section(_ceiling(499.0, 31.0, 131.0))
    assert _met(bad, "requests/s") == "**no**"
    assert _met(bad, "p99 latency") == "**no**"
    assert _met(bad, "peak resident memory (VmHWM)") == "**no**"
    # The endpoint that only runs the model bounds the product: its share and the product's
    # part of it are stated, and a model that alone stays under half of bare is named the bound.
    text = "\n".join(bad)
    assert "80.0% of the bare endpoint's requests/s is about the most" in text
    assert "answered 62.4% of its requests/s;" in text
    assert "the model, not the HTTP path" not in text
    # A product that answers more than the model endpoint (the model runs beside the loop in
    # both, so only noise can do that) does not call that endpoint "the most".
    overtaken = "\n".join(report.ceiling_section(_ceiling(500.0, 25.0, 120.0, model_rps=450.0)))
    assert "is about the most" not in overtaken
    assert "answered 111.1% of its requests/s (more than the endpoint" in overtaken
    slow_model = "\n".join(report.ceiling_section(_ceiling(300.0, 25.0, 120.0, model_rps=450.0)))
    assert "45.0% of the bare endpoint's requests/s" in slow_model
    assert "the model, not the HTTP path, sets the pace" in slow_model


def test_ceiling_section_is_replaced_in_place() -> None:
    doc = "# Benchmarks\n\n## Training\n\ntext\n\n## Notes\n\n- a note\n"
    once = report.replace_ceiling_section(doc, _ceiling(600.0, 25.0, 120.0))
    assert once.index("## Training") < once.index(report.CEILING_HEADING) < once.index("## Notes")
    assert report.replace_ceiling_section(once, _ceiling(600.0, 25.0, 120.0)) == once
    again = report.replace_ceiling_section(once, _ceiling(300.0, 25.0, 120.0))
    assert "30.0%" in again and "60.0%" not in again


def test_a_revision_is_exported_as_a_source_tree(tmp_path: Path) -> None:
    import subprocess

    from bench.revision import export_revision

    commit, tree = export_revision("HEAD", tmp_path)
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=servers.REPO, capture_output=True,
                          text=True, check=True).stdout.strip()
    assert commit == head
    assert (tree / "device" / "service" / "app.py").is_file()
    assert export_revision("HEAD", tmp_path) == (commit, tree)  # exported once


def test_further_draws_of_the_accuracy_sets_take_other_digits(mnist_dir: Path) -> None:
    from tests.camera_like import lifted_pen_set, picture_families

    def digits_of(samples: list[tuple[str, np.ndarray, str]]) -> set[str]:
        return {name.split("#")[1] for name, _, _ in samples}

    first, second = (picture_families(mnist_dir, 50, digits="validation", draw=k)["usps_style"]
                     for k in (0, 1))
    usual = picture_families(mnist_dir, 50, digits="validation")["usps_style"]
    assert digits_of(first) == digits_of(usual)  # draw 0 is what every report has read
    assert len(digits_of(first)) == len(digits_of(second)) == 50
    assert not digits_of(first) & digits_of(second)
    assert not (digits_of(lifted_pen_set(mnist_dir, 50, draw=0))
                & digits_of(lifted_pen_set(mnist_dir, 50, draw=1)))
    for missing in (120, -1):
        with pytest.raises(ValueError, match=f"no draw {missing} of 50 digits among 6000: "
                                             "use draw 0 to 119"):
            picture_families(mnist_dir, 50, digits="validation", draw=missing)


def test_a_draw_that_does_not_exist_is_one_line_before_any_reading(mnist_dir: Path,
                                                                   tmp_path: Path) -> None:
    from tests.test_train import run_cli

    # The model named does not exist: the draw is refused before the model is looked for.
    done = run_cli("--mnist", str(mnist_dir), "--digits", "validation", "--draw", "12",
                   "--model", str(tmp_path / "absent.tflite"), "--out", str(tmp_path / "r.md"),
                   module="bench.device_accuracy")
    assert done.returncode == 2
    assert done.stderr.strip().splitlines()[-1].endswith(
        "--draw 12 with --per-family 500: there is no draw 12 of 500 digits among 6000: "
        "use draw 0 to 11")
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "r.md").exists()


def _optdigits_rows(labels: list[int]) -> str:
    """Rows in optdigits' format: 64 counts (0..16) of an 8×8 grid, then the label."""
    rows = []
    for k, label in enumerate(labels):
        grid = np.zeros((8, 8), int)
        grid[1:7, 3 + k % 2] = 16  # a vertical bar, a column apart from row to row
        rows.append(",".join(str(v) for v in [*grid.ravel(), label]))
    return "\n".join(rows) + "\n"


def test_optdigits_are_read_plain_or_gzipped_as_enlarged_pictures(tmp_path: Path) -> None:
    import gzip

    from bench import optdigits

    plain = tmp_path / "optdigits.tes"
    plain.write_text(_optdigits_rows([1, 7]))
    packed = tmp_path / "digits.csv.gz"
    packed.write_bytes(gzip.compress(plain.read_bytes()))
    for path in (plain, packed):
        samples = optdigits.read(path)
        assert [(name, label) for name, _, label in samples] == [("optdigits #0", "1"),
                                                                 ("optdigits #1", "7")]
        first, second = samples[0][1], samples[1][1]
        assert first.shape == (128, 128) and first.dtype == np.uint8
        assert first[64, 3 * 16 + 8] > 200 and first[64, 0] < 30  # the bar, white on black
        assert second[64, 4 * 16 + 8] > 200 and second[64, 3 * 16 + 4] < 60


def test_a_file_that_is_not_optdigits_is_one_line_before_any_reading(tmp_path: Path,
                                                                     mnist_dir: Path) -> None:
    from tests.test_train import run_cli

    wrong = tmp_path / "wrong.csv"
    wrong.write_text("1,2,3\n")
    cases = {
        wrong: "is not optdigits: each row must be 64 counts from 0 to 16 and a label from 0 to "
               "9 (found 3 columns)",
        tmp_path / "absent.tes": "No such file or directory",
    }
    for path, message in cases.items():
        done = run_cli("--mnist", str(mnist_dir), "--per-family", "10", "--optdigits", str(path),
                       "--model", str(tmp_path / "absent.tflite"), "--out",
                       str(tmp_path / "r.md"), module="bench.device_accuracy")
        assert done.returncode == 2
        last = done.stderr.strip().splitlines()[-1]
        assert last.startswith(f"device_accuracy.py: error: --optdigits {path}: ")
        assert message in last
        assert "Traceback" not in done.stderr
        assert not (tmp_path / "r.md").exists()


def test_bad_arguments_of_the_accuracy_and_inference_benches_are_one_line(
        tmp_path: Path, mnist_dir: Path) -> None:
    """Each of these was a traceback (ZeroDivisionError, ModelError, FileNotFoundError,
    FileExistsError, IndexError)."""
    from tests.test_train import run_cli

    garbage = tmp_path / "garbage.tflite"
    garbage.write_bytes(b"\0" * 100)
    (tmp_path / "file").write_text("")
    report = ["--out", str(tmp_path / "r.md")]
    for extra, says in (
        (["--per-family", "0", *report], "'0' is not a whole number of at least 1"),
        (["--per-family", "10", "--handwriting", str(tmp_path / "absent"), *report],
         f"--handwriting {tmp_path / 'absent'}: No such file or directory"),
        (["--per-family", "10", "--model", str(garbage), *report], "garbage"),
        (["--per-family", "10", "--out", str(tmp_path / "file" / "r.md")], "--out"),
    ):
        done = run_cli("--mnist", str(mnist_dir), *extra, module="bench.device_accuracy")
        assert done.returncode == 2, (extra, done.stderr[-800:])
        assert says in done.stderr.strip().splitlines()[-1], (extra, done.stderr[-800:])
        assert "Traceback" not in done.stderr
        assert not (tmp_path / "r.md").exists()
    for extra, says in ((["--threads", "0"], "'0' is not a whole number of at least 1"),
                        (["--calls", "0"], "'0' is not a whole number of at least 1"),
                        (["--tflite-model", str(garbage)], "garbage")):
        done = run_cli("--mnist-dir", str(mnist_dir), *extra, module="bench.inference")
        assert done.returncode == 2, (extra, done.stderr[-800:])
        assert says in done.stderr.strip().splitlines()[-1], (extra, done.stderr[-800:])
        assert "Traceback" not in done.stderr
