"""Camera backends: picamera2 against a faithful fake, OpenCV on a generated video, files, none."""

from __future__ import annotations

import contextlib
import sys
import types
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

import cv2
import numpy as np
import pytest

from device.camera_specs import parse_camera_spec
from device.cameras import Camera, CameraError, make_camera, open_camera
from device.cameras.picamera2 import Picamera2Camera
from device.picture import PixelLimit
from device.reader import DigitReader
from device.runtime import DigitModel
from tests.camera_like import mnist_test, paper_frame


class FakePicamera2:
    """Mirrors picamera2.Picamera2's calls and its YUV420 buffer layout (row stride > width)."""

    instances: ClassVar[list[FakePicamera2]] = []
    fail_next_capture = False

    def __init__(self, camera_num: int = 0) -> None:
        self.calls: list[str] = []
        self.camera_config: dict | None = None
        self.frame_no = 0
        FakePicamera2.instances.append(self)

    def create_video_configuration(self, main=None, lores=None, buffer_count=6, **_):
        return {"main": dict(main or {}), "lores": dict(lores) if lores else None,
                "buffer_count": buffer_count, "use_case": "video"}

    def configure(self, config) -> None:
        self.calls.append("configure")
        lores = dict(config["lores"])
        width = lores["size"][0]
        lores["stride"] = (width + 63) // 64 * 64  # like libcamera: rows padded to 64 bytes
        self.camera_config = {**config, "lores": lores}

    def camera_configuration(self) -> dict:
        return self.camera_config

    def start(self) -> None:
        self.calls.append("start")

    def capture_array(self, name: str = "main") -> np.ndarray:
        self.calls.append(f"capture_array:{name}")
        if FakePicamera2.fail_next_capture:
            FakePicamera2.fail_next_capture = False
            raise RuntimeError("Camera frontend has timed out!")
        lores = self.camera_config[name]
        assert lores["format"] == "YUV420"
        (width, height), stride = lores["size"], lores["stride"]
        buffer = np.full((height * 3 // 2, stride), 255, np.uint8)  # padding: garbage
        buffer[:height, :width] = luma(width, height, self.frame_no)
        buffer[height:, :width] = 128  # U and V planes
        self.frame_no += 1
        return buffer

    def stop(self) -> None:
        self.calls.append("stop")

    def close(self) -> None:
        self.calls.append("close")


def luma(width: int, height: int, frame_no: int) -> np.ndarray:
    return ((np.arange(width)[None, :] + np.arange(height)[:, None] + frame_no) % 200).astype(
        np.uint8
    )


@pytest.fixture
def fake_picamera2(monkeypatch: pytest.MonkeyPatch) -> type[FakePicamera2]:
    FakePicamera2.instances = []
    FakePicamera2.fail_next_capture = False
    module = types.ModuleType("picamera2")
    module.Picamera2 = FakePicamera2
    monkeypatch.setitem(sys.modules, "picamera2", module)
    return FakePicamera2


def test_picamera2_reads_the_y_plane_without_stride_padding(fake_picamera2) -> None:
    camera = Picamera2Camera(size=(100, 60))
    camera.open()
    first, second = camera.read(), camera.read()
    assert first.shape == (60, 100) and first.dtype == np.uint8
    np.testing.assert_array_equal(first, luma(100, 60, 0))
    np.testing.assert_array_equal(second, luma(100, 60, 1))
    assert len(fake_picamera2.instances) == 1  # one long-lived Picamera2 object
    assert fake_picamera2.instances[0].calls == [
        "configure", "start", "capture_array:lores", "capture_array:lores",
    ]
    camera.close()
    camera.close()  # idempotent
    assert fake_picamera2.instances[0].calls[-2:] == ["stop", "close"]


def test_picamera2_failure_is_reopened_on_the_next_read(fake_picamera2) -> None:
    camera = open_camera("picamera2")
    camera.read()
    fake_picamera2.fail_next_capture = True
    with pytest.raises(CameraError, match="timed out"):
        camera.read()
    assert fake_picamera2.instances[0].calls[-2:] == ["stop", "close"]
    assert camera.read().shape == (480, 640)
    assert len(fake_picamera2.instances) == 2


def test_picamera2_missing_says_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "picamera2", None)
    with pytest.raises(CameraError, match="apt install python3-picamera2"):
        open_camera("picamera2")


def test_auto_prefers_picamera2(fake_picamera2) -> None:
    camera = open_camera("auto")
    assert camera.name == "picamera2"
    camera.close()


def test_auto_without_any_camera_explains_each_failure(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "picamera2", None)
    monkeypatch.setattr(cv2, "VideoCapture", lambda *_: _ClosedCapture())
    with pytest.raises(CameraError, match=r"no camera found.*picamera2.*opencv:0"):
        open_camera("auto")


class _ClosedCapture:
    def isOpened(self) -> bool:  # noqa: N802 - OpenCV's name
        return False

    def release(self) -> None:
        pass


def _write_video(path: Path, frames: list[np.ndarray]) -> None:
    h, w = frames[0].shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 5, (w, h))
    assert writer.isOpened()
    for frame in frames:
        writer.write(frame)
    writer.release()


def test_opencv_reads_a_video_of_digits_and_loops(
    tmp_path: Path, mnist_dir: Path, digit_model_path: Path
) -> None:
    images, labels = mnist_test(mnist_dir)
    wanted = (3, 8, 5)
    picks = [int(np.flatnonzero(labels == d)[1]) for d in wanted]
    frames = [paper_frame([images[i]], seed=i) for i in picks]
    video = tmp_path / "digits.avi"
    _write_video(video, frames)
    reader = DigitReader(DigitModel(digit_model_path))
    camera = open_camera(f"opencv:{video}")
    read = [reader.read(camera.read()).number for _ in range(len(wanted) + 2)]
    camera.close()
    assert read == ["3", "8", "5", "3", "8"]  # the end of the file starts it again


def test_opencv_missing_file_is_a_camera_error(tmp_path: Path) -> None:
    with pytest.raises(CameraError, match="does not exist"):
        open_camera(f"opencv:{tmp_path / 'absent.mp4'}")


def test_files_cycle_a_folder_and_skip_a_bad_image(tmp_path: Path, caplog) -> None:
    """A bad image in a folder once ended the read with an error, and the reopened camera
    started over at the first image: images after a bad one were never served."""
    for name, value in (("a.png", 10), ("c.png", 30)):
        cv2.imwrite(str(tmp_path / name), np.full((8, 8), value, np.uint8))
    (tmp_path / "b.png").write_bytes(b"not a png")
    (tmp_path / "notes.txt").write_text("ignored")
    camera = open_camera(f"file:{tmp_path}")
    assert [camera.read()[0, 0] for _ in range(5)] == [10, 30, 10, 30, 10]  # b.png skipped
    assert sum("skipping b.png: not an image" in r.message for r in caplog.records) == 1
    # Images added while serving join in at the next round; replaced ones are skipped.
    cv2.imwrite(str(tmp_path / "d.png"), np.full((8, 8), 40, np.uint8))
    (tmp_path / "a.png").write_bytes(b"")
    assert [camera.read()[0, 0] for _ in range(3)] == [30, 30, 40]  # the round ends at c
    for name in ("c.png", "d.png"):
        (tmp_path / name).write_bytes(b"text")
    with pytest.raises(CameraError, match=r"a\.png: .*; b\.png: not an image; c\.png"):
        camera.read()  # no image reads: that is the camera failing


def test_a_folder_the_service_may_not_read_is_one_line(tmp_path: Path, monkeypatch) -> None:
    def refused(self: Path) -> bool:
        raise PermissionError(13, "Permission denied", str(self))

    monkeypatch.setattr(Path, "is_file", refused)
    with pytest.raises(CameraError, match="Permission denied; give the service's user read"):
        open_camera(f"file:{tmp_path}")
    with pytest.raises(ValueError, match="Permission denied; give the service's user read"):
        parse_camera_spec(f"file:{tmp_path}")


def test_files_errors(tmp_path: Path) -> None:
    with pytest.raises(CameraError, match="no such file"):
        open_camera(f"file:{tmp_path / 'absent'}")
    with pytest.raises(CameraError, match="not a regular file or folder"):
        open_camera("file:/dev/null")
    with pytest.raises(CameraError, match="holds no images"):
        open_camera(f"file:{tmp_path}")


def test_none_and_unknown_specs() -> None:
    with pytest.raises(CameraError, match="no camera configured"):
        open_camera("none")
    with pytest.raises(CameraError, match="unknown camera 'webcam'; use auto, picamera2"):
        make_camera("webcam")


def test_a_space_after_the_colon_is_no_part_of_the_camera(tmp_path: Path) -> None:
    assert parse_camera_spec("opencv: 0").arg == "0"  # once "video file  0 does not exist"
    assert make_camera("opencv: 0").name == "opencv:0"


@pytest.mark.parametrize("spec", ["bogus", "opencv:", "file:", "auto:1", "none:x", "usb:0"])
def test_specs_that_cannot_work_are_refused_before_anything_opens(spec: str) -> None:
    with pytest.raises(ValueError, match=f"unknown camera '{spec}'"):
        parse_camera_spec(spec)


def test_file_refuses_a_video_and_names_the_spec_that_reads_it(tmp_path: Path) -> None:
    video = tmp_path / "clip.avi"
    video.write_bytes(b"RIFF....AVI ")
    with pytest.raises(ValueError, match=f"for a video use opencv:{video}"):
        parse_camera_spec(f"file:{video}")
    notes = tmp_path / "notes.txt"
    notes.write_text("hello")
    with pytest.raises(ValueError, match="is not an image"):
        parse_camera_spec(f"file:{notes}")
    # A folder or a file that is not there yet may appear later: the camera retries it.
    assert parse_camera_spec(f"file:{tmp_path}").arg == str(tmp_path)
    assert parse_camera_spec(f"file:{tmp_path}/later.png").kind == "file"


def test_file_frames_are_no_larger_than_the_reader_needs(tmp_path: Path) -> None:
    """A file: camera once served a 40-megapixel PNG at full size, 120 MB a frame, held by
    the preview, the reading and the next frame at once: the service passed its 400 MB cap."""
    cv2.imwrite(str(tmp_path / "a_wide.png"), np.full((1200, 1600, 3), 200, np.uint8))
    cv2.imwrite(str(tmp_path / "b_tall.jpg"), np.full((2000, 500), 200, np.uint8))
    cv2.imwrite(str(tmp_path / "c_small.png"), np.full((240, 320), 200, np.uint8))
    camera = open_camera(f"file:{tmp_path}", least_side=640)
    assert [camera.read().shape for _ in range(3)] == [(480, 640, 3), (640, 160), (240, 320)]
    camera = open_camera(f"file:{tmp_path}")  # no reader to say how large: as the file is
    assert camera.read().shape == (1200, 1600, 3)


def test_file_frames_are_decoded_within_the_pixel_budget(tmp_path: Path) -> None:
    # A camera decoding a 40-megapixel PNG beside an upload of one took the service past its
    # memory cap: each picture now takes room for the pixels it decodes into (a large JPEG's
    # shrunk ones) and keeps it until its frame is no larger than needed.
    cv2.imwrite(str(tmp_path / "a.png"), np.full((1200, 1600, 3), 200, np.uint8))
    cv2.imwrite(str(tmp_path / "b.jpg"), np.full((1500, 2000, 3), 200, np.uint8))
    held: list[int] = []

    @contextlib.contextmanager
    def room_for(pixels: int) -> Iterator[None]:
        held.append(pixels)
        yield

    camera = open_camera(f"file:{tmp_path}", least_side=640,
                         limit=PixelLimit(10**7, "DIGITS_MAX_IMAGE_PIXELS", room_for))
    assert [camera.read().shape for _ in range(2)] == [(480, 640, 3), (480, 640, 3)]
    assert held == [1600 * 1200, 1000 * 750]  # the JPEG decodes at half its size


def test_a_folder_is_read_from_its_first_image_after_the_readiness_probe(tmp_path: Path) -> None:
    for i, name in enumerate(["a.png", "b.png"]):
        cv2.imwrite(str(tmp_path / name), np.full((4, 4), i, np.uint8))
    camera = make_camera(f"file:{tmp_path}")
    camera.open()
    assert camera.first_frame()[0, 0] == 0
    assert [camera.read()[0, 0] for _ in range(3)] == [0, 1, 0]


class FlakyCamera(Camera):
    name = "flaky"

    def __init__(self) -> None:
        super().__init__()
        self.opens = self.closes = 0
        self.fail = False

    def _open(self) -> None:
        self.opens += 1

    def _read(self) -> np.ndarray:
        if self.fail:
            self.fail = False
            raise OSError("USB disconnect")
        return np.zeros((4, 4), np.uint8)

    def _close(self) -> None:
        self.closes += 1


def test_any_failed_read_closes_and_the_next_read_reopens() -> None:
    camera = FlakyCamera()
    camera.open()
    camera.read()
    camera.fail = True
    with pytest.raises(CameraError, match="flaky: reading a frame failed \\(USB disconnect\\)"):
        camera.read()
    assert (camera.opens, camera.closes, camera.is_open) == (1, 1, False)
    camera.read()
    assert (camera.opens, camera.is_open) == (2, True)
