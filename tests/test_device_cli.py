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
from device.camera_specs import SPEC_FORMS
from device.picture import read_picture
from device.service.uploads import decode_upload
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
    assert records[1] == {"file": str(broken), "error": "not_an_image", "detail": "not an image"}
    assert records[2]["error"] == "no_such_file"
    assert records[3]["digit"] is None and records[3]["digits"] == []
    assert "no ink" in records[3]["reason"]
    assert f"{broken}: not an image" in captured.err
    assert "2 of 4 file(s) could not be read" in captured.err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["predict"], "the following arguments are required: IMAGE"),
        # The subcommand's own usage, not the top-level one.
        (["predict", "x.png", "--bogus"],
         "usage: python -m device predict [-h] [--json]"),
        (["predict", "x.png", "--bogus"], "predict: error: unrecognized arguments: --bogus"),
        (["predict", "x.png", "--roi", "0.5,0.5"], "four comma-separated fractions"),
        (["predict", "x.png", "--roi", "0.5,0.5,0.8,0.2"], "x+w <= 1"),
        (["predict", "x.png", "--threads", "0"], "from 1 to 64"),
        (["predict", "x.png", "--threads", "99999999999"], "from 1 to 64"),
        (["capture"], "--out"),
        (["fly"], "invalid choice: 'fly'"),
        (["capture", "--out", "x", "--bogus"], "capture: error: unrecognized arguments"),
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


def test_predict_reads_every_image_of_a_folder(images, model_args, tmp_path, capsys) -> None:
    folder = tmp_path / "folder"
    folder.mkdir()
    (folder / "b.png").write_bytes(images["three"].read_bytes())
    (folder / "a.png").write_bytes(images["forty_two"].read_bytes())
    (folder / "notes.txt").write_text("not an image")
    empty = tmp_path / "empty"
    empty.mkdir()
    code = main(["predict", "--json", str(folder), str(empty), *model_args])
    captured = capsys.readouterr()
    records = [json.loads(line) for line in captured.out.splitlines()]
    assert code == 1  # the empty folder
    assert [r["file"] for r in records] == [str(folder / "a.png"), str(folder / "b.png"),
                                            str(empty)]
    assert [r.get("number") for r in records[:2]] == ["42", "3"]
    assert records[2]["error"] == "no_images"
    assert f"{empty}: the folder {empty} holds no images" in captured.err


@pytest.mark.parametrize("ink", [0, 255])
def test_a_drawing_on_a_transparent_canvas_reads_as_it_does_uploaded(
        ink: int, mnist_dir: Path, model_args, tmp_path: Path, capsys) -> None:
    # Drawing apps export dark ink on a transparent canvas whose hidden colour is black: a
    # decode that drops the alpha sees black on black and finds no ink. A white pen's strokes
    # on that canvas laid on white paper would vanish the same way.
    digits, labels = mnist_test(mnist_dir)
    seven = digits[int(np.flatnonzero(labels == 7)[0])]
    rgba = np.zeros((224, 224, 4), np.uint8)
    rgba[..., :3] = ink
    rgba[..., 3] = cv2.resize(seven, (224, 224), interpolation=cv2.INTER_CUBIC)
    drawing = tmp_path / "drawing.png"
    cv2.imwrite(str(drawing), rgba)
    code = main(["predict", "--json", str(drawing), *model_args])
    answer = json.loads(capsys.readouterr().out)
    assert code == 0
    assert answer["digit"] == 7 and answer["reason"] is None
    # The same frame the service decodes from the same bytes.
    assert np.array_equal(read_picture(drawing), decode_upload(drawing.read_bytes(), 10**7).frame)


def test_predict_refuses_a_decompression_bomb_in_one_line(model_args, capsys,
                                                          monkeypatch) -> None:
    monkeypatch.delenv("OPENCV_IO_MAX_IMAGE_PIXELS", raising=False)  # OpenCV's own limit
    bomb = REPO / "docs" / "examples" / "bomb.png"  # 68 bytes declaring 50,000×50,000 pixels
    code = main(["predict", "--json", str(bomb), *model_args])
    captured = capsys.readouterr()
    assert code == 1
    assert json.loads(captured.out)["error"] == "image_too_large"
    assert ("the image declares 50000×50000 = 2500.0 megapixels, more than the limit of "
            "1073.7 megapixels (OPENCV_IO_MAX_IMAGE_PIXELS raises it)") in captured.err
    assert "Traceback" not in captured.err


def test_a_picture_too_thin_for_a_digit_is_one_line_and_the_others_are_read(
        images, model_args, tmp_path, capsys) -> None:
    strip = tmp_path / "strip.png"
    cv2.imwrite(str(strip), np.full((1, 10_000), 255, np.uint8))
    code = main(["predict", "--json", str(strip), str(images["three"]), *model_args])
    captured = capsys.readouterr()
    first, second = (json.loads(line) for line in captured.out.splitlines())
    assert code == 1
    assert first["error"] == "unusable_image" and "too small to hold a digit" in first["detail"]
    assert second["digit"] == 3
    assert f"{strip}: the picture is 10000×1 px: too small" in captured.err
    assert "Traceback" not in captured.err
    code = main(["capture", "--out", str(tmp_path / "shots"), "--camera", f"file:{strip}",
                 *model_args])
    err = capsys.readouterr().err
    assert code == 1 and "Traceback" not in err
    assert err.startswith("python -m device capture: error: cannot read the ")
    assert "too small to hold a digit" in err


def test_an_empty_path_is_refused_not_read_as_the_current_folder(images, model_args,
                                                                 monkeypatch, capsys) -> None:
    monkeypatch.chdir(images["three"].parent)  # a folder of images: '' once read them all
    with pytest.raises(SystemExit) as exited:
        main(["predict", str(images["three"]), "", *model_args])
    captured = capsys.readouterr()
    assert exited.value.code == 2 and captured.out == ""
    assert captured.err.splitlines()[-1] == (
        "python -m device predict: error: argument IMAGE: '' is an empty path: name an image "
        "file or a folder ('.' for the current one)")
    before = sorted(Path().iterdir())
    with pytest.raises(SystemExit) as exited:  # '' once wrote frame.png and more in here
        main(["capture", "--out", "", "--camera", f"file:{images['three']}", *model_args])
    captured = capsys.readouterr()
    assert exited.value.code == 2 and sorted(Path().iterdir()) == before
    assert captured.err.splitlines()[-1] == (
        "python -m device capture: error: argument --out: '' is an empty path: name a folder "
        "('.' for the current one)")


def test_a_device_or_pipe_is_no_image_file(model_args, capsys) -> None:
    code = main(["predict", "--json", "/dev/null", *model_args])  # once "no such file"
    captured = capsys.readouterr()
    assert code == 1
    assert json.loads(captured.out)["error"] == "not_a_file"
    assert "/dev/null: not a regular file or folder" in captured.err


def test_predict_prints_no_native_chatter(images, tmp_path) -> None:
    # LiteRT's C++ "INFO: Created TensorFlow Lite XNNPACK delegate" line stays off the
    # terminal; the answer and nothing else.
    done = subprocess.run(
        [sys.executable, "-m", "device", "predict", str(images["three"])],
        cwd=REPO, capture_output=True, text=True, timeout=120, check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    assert done.stdout.startswith(f"{images['three']}: digit 3")


def test_bad_inputs_get_only_the_commands_own_lines(model_args, tmp_path) -> None:
    """OpenCV's "[ WARN:0@0.03] global cap_v4l.cpp:913 open VIDEOIO(V4L2:/dev/video99): can't
    open camera by index", libpng's "PNG input buffer is incomplete" and a warning for each
    image of a folder that no image of read once came before the one-line error."""
    folder = tmp_path / "damaged"
    folder.mkdir()
    noise = np.random.default_rng(1).integers(0, 256, (200, 300, 3), dtype=np.uint8)
    for name in ("a.png", "b.jpg"):
        data = cv2.imencode(Path(name).suffix, noise)[1].tobytes()
        (folder / name).write_bytes(data[: len(data) // 2])  # the header whole, pixels cut
    shots = ["--out", str(tmp_path / "shots")]
    for args, lines in (
        (["capture", *shots, "--camera", f"file:{folder}"], 1),
        (["capture", *shots, "--camera", "opencv:99"], 1),
        (["predict", str(folder / "a.png")], 2),  # the file's error, then how many failed
    ):
        done = subprocess.run(
            [sys.executable, "-m", "device", *args, *model_args],
            cwd=REPO, capture_output=True, text=True, timeout=120, check=False,
        )
        assert done.returncode == 1
        assert len(done.stderr.splitlines()) == lines, done.stderr
        assert done.stderr.startswith(f"python -m device {args[0]}: error: "), done.stderr


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


def test_capture_saves_a_large_file_at_the_size_it_was_read(images, model_args, tmp_path,
                                                            capsys) -> None:
    # The frame and the boxes drawn on it are the picture as read: no larger than the reader
    # needs (640 px on its longer side), not the file's 1600×1200.
    large = tmp_path / "large.png"
    frame = cv2.imread(str(images["forty_two"]))
    cv2.imwrite(str(large), cv2.resize(frame, (1600, 1200), interpolation=cv2.INTER_CUBIC))
    out = tmp_path / "shots"
    code = main(["capture", "--out", str(out), "--camera", f"file:{large}", *model_args])
    assert code == 0 and "number 42" in capsys.readouterr().out
    for name in ("frame.png", "boxes.png"):
        assert cv2.imread(str(out / name)).shape == (480, 640, 3)


def test_capture_without_a_camera_says_so(model_args, tmp_path, capsys) -> None:
    code = main(["capture", "--out", str(tmp_path), "--camera", "none", *model_args])
    err = capsys.readouterr().err
    assert code == 1
    assert err.startswith("python -m device capture: error: no camera configured")
    assert "choose another with --camera" in err
    assert len(err.strip().splitlines()) == 1


def test_capture_lists_the_camera_specs_only_for_a_camera_that_is_wrong(model_args, tmp_path,
                                                                        capsys) -> None:
    # A damaged picture once got the list of camera specs too; an unknown spec had it twice.
    damaged = tmp_path / "damaged.png"
    damaged.write_bytes(b"\x89PNG\r\n\x1a\n not really")
    for spec, says, listed in (
        (f"file:{damaged}", "damaged.png: the PNG image's header is damaged", 0),
        ("bogus", "unknown camera 'bogus'; use auto,", 1),
        (f"file:{tmp_path}/absent", "no such file or folder; choose another with --camera", 1),
    ):
        code = main(["capture", "--out", str(tmp_path / "shots"), "--camera", spec, *model_args])
        err = capsys.readouterr().err
        assert code == 1 and len(err.splitlines()) == 1, err
        assert says in err and err.count(SPEC_FORMS) == listed, err


def test_capture_refuses_a_video_given_to_file(model_args, tmp_path, capsys) -> None:
    video = tmp_path / "clip.avi"
    video.write_bytes(b"RIFF")
    code = main(["capture", "--out", str(tmp_path), "--camera", f"file:{video}", *model_args])
    err = capsys.readouterr().err
    assert code == 1
    assert f"file: reads still images; for a video use opencv:{video}" in err
