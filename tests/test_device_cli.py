"""`python -m device predict|capture`: per-file results, JSON lines, clear errors, exit codes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from device.__main__ import main
from tests.camera_like import mnist_test, paper_frame
from tests.conftest import REPO


@pytest.fixture(scope="module")
def images(tmp_path_factory: pytest.TempPathFactory, mnist_dir: Path) -> dict[str, Path]:
    """A 3, a 42 and a blank sheet as PNG files."""
    folder = tmp_path_factory.mktemp("cli_images")
    digits, labels = mnist_test(mnist_dir)
    first = {d: digits[int(np.flatnonzero(labels == d)[0])] for d in (2, 3, 4)}
    paths = {
        "three": folder / "three.png",
        "forty_two": folder / "forty_two.png",
        "blank": folder / "blank.png",
    }
    cv2.imwrite(str(paths["three"]), paper_frame([first[3]], seed=11))
    cv2.imwrite(str(paths["forty_two"]), paper_frame([first[4], first[2]], seed=12))
    cv2.imwrite(str(paths["blank"]), np.full((240, 320, 3), 210, np.uint8))
    return paths


@pytest.fixture
def model_args(digit_model_path: Path) -> list[str]:
    return ["--model", str(digit_model_path)]


def test_predict_prints_one_line_per_file(images, model_args, capsys) -> None:
    code = main(["predict", str(images["three"]), str(images["forty_two"]), *model_args])
    out = capsys.readouterr().out.splitlines()
    assert code == 0
    assert len(out) == 2
    assert out[0].startswith(f"{images['three']}: digit 3 (confidence ")
    assert "number 42" in out[1]
    assert all("preprocess" in line and "inference" in line and " ms" in line for line in out)


def test_predict_json_keeps_order_and_reports_bad_files(images, model_args, tmp_path, capsys):
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"\xff\xd8 not really a jpeg")
    files = [images["forty_two"], broken, tmp_path / "missing.png", images["blank"]]
    code = main(["predict", "--json", *map(str, files), *model_args])
    captured = capsys.readouterr()
    records = [json.loads(line) for line in captured.out.splitlines()]
    assert code == 1  # some files failed, the others were still read
    assert [r["file"] for r in records] == [str(f) for f in files]
    assert records[0]["number"] == "42" and records[0]["digit"] in (4, 2)
    assert [d["digit"] for d in records[0]["digits"]] == [4, 2]
    assert 0 < records[0]["confidence"] <= 1
    assert records[1]["error"] == "not a readable image" and records[1]["digit"] is None
    assert records[2]["error"] == "no such file"
    assert records[3]["digit"] is None and records[3]["digits"] == []
    assert "no ink" in records[3]["reason"]
    assert f"{broken}: not a readable image" in captured.err
    assert "2 of 4 file(s) could not be read" in captured.err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["predict"], "the following arguments are required: IMAGE"),
        (["predict", "x.png", "--bogus"], "unrecognized arguments: --bogus"),
        (["predict", "x.png", "--roi", "0.5,0.5"], "four comma-separated fractions"),
        (["predict", "x.png", "--roi", "0.5,0.5,0.8,0.2"], "x+w <= 1"),
        (["predict", "x.png", "--threads", "0"], "at least 1"),
        (["capture"], "--out"),
        (["fly"], "invalid choice: 'fly'"),
    ],
)
def test_wrong_usage_is_argparse_error_exit_2(argv, message, capsys) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


def test_missing_model_is_one_line_without_traceback(images, tmp_path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "device", "predict", str(images["three"]),
         "--model", str(tmp_path / "nope.tflite")],
        cwd=REPO, capture_output=True, text=True, timeout=120, check=False,
    )
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    lines = done.stderr.strip().splitlines()
    assert lines == [
        f"python -m device predict: error: model file {tmp_path / 'nope.tflite'} not found; "
        "pass --model PATH or run `make model`"
    ]


def test_default_model_is_the_shipped_one_from_any_directory(images, tmp_path) -> None:
    if not (REPO / "models" / "digitnet_int8.tflite").is_file():
        pytest.skip("models/digitnet_int8.tflite is not committed yet")
    done = subprocess.run(
        [sys.executable, "-m", "device", "predict", "--json", str(images["three"])],
        cwd=tmp_path, capture_output=True, text=True, timeout=120, check=False,
        env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"},
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["digit"] == 3


def test_capture_saves_what_the_model_sees(images, model_args, tmp_path, capsys) -> None:
    out = tmp_path / "shots"
    code = main(["capture", "--out", str(out), "--camera", f"file:{images['forty_two']}",
                 *model_args])
    captured = capsys.readouterr()
    assert code == 0
    assert "digit" in captured.out and "number 42" in captured.out
    saved = sorted(p.name for p in out.iterdir())
    assert saved == ["boxes.png", "frame.png", "input_0.png", "input_1.png", "mask.png",
                     "searched.png"]
    mask = cv2.imread(str(out / "mask.png"), cv2.IMREAD_UNCHANGED)
    assert mask.shape == (240, 320) and set(np.unique(mask)) <= {0, 255}
    assert cv2.imread(str(out / "input_0.png"), cv2.IMREAD_UNCHANGED).shape == (280, 280)


def test_capture_without_a_camera_says_so(model_args, tmp_path, capsys) -> None:
    code = main(["capture", "--out", str(tmp_path), "--camera", "none", *model_args])
    err = capsys.readouterr().err
    assert code == 1
    assert err.startswith("python -m device capture: error: no camera configured")
    assert len(err.strip().splitlines()) == 1
