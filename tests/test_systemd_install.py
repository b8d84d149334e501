"""systemd/install.sh in --root mode: what it lays down, again, undone, and merely printed."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import REPO

INSTALLER = REPO / "systemd" / "install.sh"
SYSTEM_PYTHON = Path("/usr/bin/python3")
UNIT = "etc/systemd/system/pi-digits.service"
ENV_FILE = "etc/pi-digits/digits.env"
MODELS = "opt/pi-digits/models"
VENV = "opt/pi-digits/venv"
SOURCE_ENTRIES = ("pyproject.toml", "README.md", "device", "systemd", "models")


@pytest.fixture
def source(tmp_path: Path) -> Path:
    """A checkout to install from: this one's code and unit, and a model of our own bytes.

    Model bytes of our own keep the installer tests independent of which model is shipped;
    the installer copies the pair, the service verifies it.
    """
    src = tmp_path / "src"
    src.mkdir()
    for name in SOURCE_ENTRIES[:-1]:
        (src / name).symlink_to(REPO / name)
    (src / "models").mkdir()
    (src / "models" / "digitnet_int8.tflite").write_bytes(b"TFL3 model bytes")
    (src / "models" / "digitnet_int8.json").write_text('{"format_version": 1}\n')
    (src / "models" / "digitnet_first_look_int8.tflite").write_bytes(b"TFL3 first look")
    (src / "models" / "digitnet_first_look_int8.json").write_text('{"format_version": 1}\n')
    return src


def install(root: Path, source: Path, *args: str, env: dict | None = None, check: bool = True):
    result = subprocess.run(
        ["bash", str(INSTALLER), "--root", str(root), "--source", str(source), *args],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
        env={**os.environ, **(env or {})},
    )
    if check:
        assert result.returncode == 0, result.stdout + result.stderr
    return result


def files_under(root: Path) -> dict[str, bytes]:
    return {
        str(path.relative_to(root)): path.read_bytes()
        for path in sorted(root.rglob("*"))
        if path.is_file()
    }


def test_root_mode_lays_down_the_unit_config_and_model(tmp_path: Path, source: Path):
    root = tmp_path / "root"
    result = install(root, source, "--skip-venv")
    assert files_under(root) == {
        UNIT: (REPO / "systemd" / "pi-digits.service").read_bytes(),
        ENV_FILE: (REPO / "systemd" / "digits.env.example").read_bytes(),
        f"{MODELS}/digitnet_int8.tflite": b"TFL3 model bytes",
        f"{MODELS}/digitnet_int8.json": b'{"format_version": 1}\n',
        f"{MODELS}/digitnet_first_look_int8.tflite": b"TFL3 first look",
        f"{MODELS}/digitnet_first_look_int8.json": b'{"format_version": 1}\n',
    }
    assert (root / ENV_FILE).stat().st_mode & 0o777 == 0o640  # it may hold the token
    # What it would do to the running system, it says, and leaves alone.
    for step in (
        "apt-get install -y --no-install-recommends python3-venv python3-pip python3-numpy",
        "apt-get install -y --no-install-recommends python3-picamera2",
        "useradd --system --user-group",
        "systemctl daemon-reload",
        "systemctl enable pi-digits.service",
        "systemctl restart pi-digits.service",
    ):
        lines = result.stdout.splitlines()
        assert any(step in line and "skipped: --root" in line for line in lines), step
    assert ":8000/predict" in result.stdout


def test_a_second_run_keeps_the_edited_config_and_replaces_the_rest(tmp_path: Path, source: Path):
    root = tmp_path / "root"
    install(root, source, "--skip-venv")
    edited = "DIGITS_HOST=0.0.0.0\nDIGITS_PORT=9001\nDIGITS_CAMERA=opencv:0\n"
    (root / ENV_FILE).write_text(edited)
    (root / UNIT).write_text("[Service]\nExecStart=/bin/false\n")  # an older version
    result = install(root, source, "--skip-venv")
    assert (root / ENV_FILE).read_text() == edited
    assert (root / UNIT).read_bytes() == (REPO / "systemd" / "pi-digits.service").read_bytes()
    assert "kept as it is" in result.stdout
    assert ":9001/predict" in result.stdout  # the URL follows the configured port


def test_uninstall_removes_it_and_purge_removes_the_config_too(tmp_path: Path, source: Path):
    root = tmp_path / "root"
    install(root, source, "--skip-venv")
    result = install(root, source, "--uninstall")
    assert set(files_under(root)) == {ENV_FILE}  # your settings survive a plain uninstall
    assert "systemctl disable --now pi-digits.service (skipped: --root)" in result.stdout
    result = install(root, source, "--uninstall", "--purge")
    assert files_under(root) == {}
    assert "userdel pi-digits (skipped: --root)" in result.stdout


def test_dry_run_prints_every_action_and_changes_nothing(tmp_path: Path, source: Path):
    root = tmp_path / "root"
    root.mkdir()
    result = install(root, source, "--dry-run")
    assert list(root.iterdir()) == []
    out = result.stdout
    assert f"+ install -m 0644 {source}/systemd/pi-digits.service {root}/{UNIT}" in out
    assert f"+ install -m 0640 {source}/systemd/digits.env.example {root}/{ENV_FILE}" in out
    assert f"-m venv --system-site-packages {root}/{VENV}" in out
    assert "pip install" in out

    install(root, source, "--skip-venv")
    before = files_under(root)
    install(root, source, "--dry-run", "--uninstall", "--purge")
    assert files_under(root) == before


def test_mistakes_get_one_clear_line(tmp_path: Path, source: Path):
    result = install(tmp_path / "root", source, "--frobnicate", check=False)
    assert result.returncode != 0
    assert "unknown option '--frobnicate'" in result.stderr
    (source / "models" / "digitnet_int8.json").unlink()
    result = install(tmp_path / "root", source, "--skip-venv", check=False)
    assert result.returncode != 0
    assert "models/digitnet_int8.json is missing" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to drop to an unprivileged user")
def test_refuses_to_touch_the_system_without_root():
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("setpriv (util-linux) not installed")
    result = subprocess.run(
        [setpriv, "--reuid=65534", "--regid=65534", "--clear-groups", "bash", str(INSTALLER)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 1
    assert "run as root: sudo" in result.stderr


def system_numpy() -> str | None:
    if not SYSTEM_PYTHON.is_file():
        return None
    result = subprocess.run(
        [str(SYSTEM_PYTHON), "-c", "import numpy, venv; print(numpy.__version__)"],
        capture_output=True,
        text=True,
        check=False,
    )
    return result.stdout.strip() if result.returncode == 0 else None


@pytest.mark.slow
def test_the_venv_gets_the_device_side_and_keeps_the_systems_numpy(tmp_path: Path, source: Path):
    """The real venv step (a pip install of the device extra, ~40 s from pip's cache), as on a Pi:
    a venv over the system's Python whose apt numpy (1.24 on Bookworm) pip must not replace."""
    numpy_version = system_numpy()
    if numpy_version is None:
        pytest.skip(
            "needs /usr/bin/python3 with apt's numpy and venv: "
            "apt-get install python3-numpy python3-venv"
        )
    root = tmp_path / "root"
    install(root, source, env={"PI_DIGITS_PYTHON": str(SYSTEM_PYTHON)})
    python = root / VENV / "bin" / "python"
    probe = (
        "import numpy, cv2, ai_edge_litert, fastapi, uvicorn, device.service.settings;"
        "print(numpy.__version__, numpy.__file__)"
    )
    result = subprocess.run(
        [str(python), "-c", probe], capture_output=True, text=True, cwd=tmp_path, check=False
    )
    assert result.returncode == 0, result.stderr
    version, location = result.stdout.split()
    serve_help = subprocess.run(
        [str(python), "-m", "device", "serve", "--help"],
        capture_output=True, text=True, cwd=tmp_path, check=False,
    )
    assert serve_help.returncode == 0, serve_help.stderr
    assert "--camera" in serve_help.stdout
    assert version == numpy_version
    assert not location.startswith(str(root))  # the system's numpy, not a pip copy in the venv
    assert (root / "opt/pi-digits/constraints.txt").read_text() == f"numpy=={numpy_version}\n"
    # The build ran on a copy: nothing new in the checkout (no build/, no *.egg-info).
    assert sorted(path.name for path in source.iterdir()) == sorted(SOURCE_ENTRIES)
