"""`python -m device serve` configuration: flags over DIGITS_* variables over the env file, and a
start that fails says why in one line and exits non-zero."""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import ValidationError
from service_helpers import REPO

from device.service.settings import DEFAULT_MODEL, ServiceSettings, load_settings

SERVICE_VARIABLES = [
    "DIGITS_HOST", "DIGITS_PORT", "DIGITS_MODEL", "DIGITS_CAMERA", "DIGITS_ROI", "DIGITS_THREADS",
    "DIGITS_MAX_UPLOAD_BYTES", "DIGITS_TOKEN", "DIGITS_LOG_LEVEL", "DIGITS_ENV_FILE",
]  # fmt: skip


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in SERVICE_VARIABLES:
        monkeypatch.delenv(name, raising=False)


def test_defaults() -> None:
    settings = load_settings()
    assert (settings.host, settings.port, settings.camera) == ("127.0.0.1", 8000, "auto")
    assert settings.model == DEFAULT_MODEL
    assert settings.max_upload_bytes == 8 * 1024 * 1024
    assert settings.token_value is None
    assert settings.preview is True


def test_flag_beats_environment_beats_env_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    env_file = tmp_path / "digits.env"
    env_file.write_text(
        "# comment\nDIGITS_PORT=9001\nDIGITS_CAMERA=none\nDIGITS_THREADS=3\n"
        "DIGITS_ROI=0.1,0.2,0.5,0.6\nDIGITS_TOKEN=from-file\nDIGITS_LOG_LEVEL=WARNING\n"
    )
    monkeypatch.setenv("DIGITS_ENV_FILE", str(env_file))
    monkeypatch.setenv("DIGITS_PORT", "9002")
    monkeypatch.setenv("DIGITS_MAX_UPLOAD_BYTES", "1000")
    settings = load_settings(port=9003, camera=None)  # camera=None: flag not given
    assert settings.port == 9003
    assert settings.camera == "none"
    assert settings.threads == 3
    assert settings.roi == (0.1, 0.2, 0.5, 0.6)
    assert settings.token_value == "from-file"
    assert settings.log_level == "warning"
    assert settings.max_upload_bytes == 1000
    assert "from-file" not in repr(settings)  # the token never lands in a log by accident


@pytest.mark.parametrize("roi", ["0.1,0.2,0.3", "a,b,c,d", "0.5,0.5,0.6,0.2", "-0.1,0,0.5,0.5"])
def test_bad_roi_is_refused_with_an_example(roi: str) -> None:
    with pytest.raises(ValidationError, match="x,y,w,h"):
        ServiceSettings(roi=roi)


def test_missing_env_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_settings(tmp_path / "nope.env")


def _serve(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "device", "serve", "--port", "1", *args],
        check=False, cwd=REPO, capture_output=True, text=True, timeout=120, env=env,
    )  # fmt: skip


def _one_line_error(result: subprocess.CompletedProcess) -> str:
    assert result.returncode != 0
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    return lines[0]


def test_missing_model_exits_with_one_line(tmp_path: Path) -> None:
    line = _one_line_error(_serve("--model", str(tmp_path / "absent.tflite")))
    assert "absent.tflite" in line
    assert "not found" in line


def test_corrupt_model_exits_with_one_line(tmp_path: Path, digit_model_path: Path) -> None:
    model = tmp_path / "digits.tflite"
    model.write_bytes(digit_model_path.read_bytes()[:5000])  # cut short: no longer its sidecar's
    shutil.copy(digit_model_path.with_suffix(".json"), model.with_suffix(".json"))
    line = _one_line_error(_serve("--model", str(model)))
    assert "does not match its sidecar" in line


def test_bad_setting_exits_with_one_line(tmp_path: Path) -> None:
    env = {"PATH": "/usr/bin:/bin", "DIGITS_THREADS": "zero"}
    line = _one_line_error(_serve(env=env))
    assert "threads" in line
    line = _one_line_error(_serve("--env-file", str(tmp_path / "missing.env")))
    assert "missing.env" in line


@pytest.mark.parametrize(
    ("flag", "value", "setting"),
    [
        ("--max-image-pixels", str(2**64), "max_image_pixels"),
        ("--capture-timeout-s", "inf", "capture_timeout_s"),
        ("--capture-timeout-s", "1e308", "capture_timeout_s"),
    ],
)
def test_out_of_range_setting_exits_with_one_line(flag: str, value: str, setting: str) -> None:
    # Each of these values once got past the settings and crashed the start-up further on.
    # A camera, so that the start waits for its first open as it did when these crashed.
    line = _one_line_error(_serve(flag, value, "--camera", "file:docs/examples/42.jpg"))
    assert line.startswith(f"python -m device serve: error: invalid setting ({setting}: ")


def test_a_heartbeat_that_would_busy_the_service_is_refused() -> None:
    # Stream clients that never read got a comment line each microsecond: CPU spent for none.
    with pytest.raises(ValidationError, match="stream_heartbeat_s"):
        ServiceSettings(stream_heartbeat_s=0.000001)


def test_camera_that_would_never_be_reopened_is_refused() -> None:
    # An infinite pause before reopening a failed camera would leave it failed for good.
    with pytest.raises(ValidationError, match="camera_retry_s"):
        ServiceSettings(camera_retry_s=float("inf"))


def test_a_port_bound_but_not_yet_listened_on_is_taken() -> None:
    # Two services started at once both bound the port (SO_REUSEADDR allows it until one
    # listens); the second then failed in uvicorn's listen with an error-level traceback.
    from device.service.server import ListenError, listen_socket

    first = listen_socket("127.0.0.1", 0)
    try:
        with pytest.raises(ListenError, match="another program uses it"):
            listen_socket("127.0.0.1", first.getsockname()[1])
    finally:
        first.close()


def test_taken_port_exits_with_one_line(digit_model_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run(
            [sys.executable, "-m", "device", "serve", "--camera", "none", "--port", str(port),
             "--model", str(digit_model_path)],
            check=False, cwd=REPO, capture_output=True, text=True, timeout=120,
        )  # fmt: skip
    assert result.returncode == 2
    errors = [line for line in result.stderr.splitlines() if "error" in line.lower()]
    assert errors == [
        f"python -m device serve: error: cannot listen on 127.0.0.1:{port}: "
        "Address already in use; another program uses it; pick another --port"
    ]


# Ctrl-C lands while the model loads: build_context sends this process SIGINT itself, so the
# moment is exact rather than a race against the start-up.
CTRL_C_WHILE_LOADING = """
import signal, sys
import device.service.context as context

def interrupted_load(*args, **kwargs):
    signal.raise_signal(signal.SIGINT)

context.build_context = interrupted_load
from device.__main__ import main
sys.exit(main(sys.argv[1:]))
"""


def test_ctrl_c_during_start_up_exits_quietly(digit_model_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-c", CTRL_C_WHILE_LOADING, "serve", "--camera", "none",
         "--port", "1", "--model", str(digit_model_path)],
        check=False, cwd=REPO, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 130
    assert "Traceback" not in result.stderr
    assert "KeyboardInterrupt" not in result.stderr
