"""`make serve` as the README tells it: 127.0.0.1:8000 by default, and DIGITS_* settings from
the environment or a .env file beside the Makefile win over that."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import httpx
from service_helpers import REPO, free_port

VENV = REPO / ".venv"


def _make(*args: str, cwd: Path, env: dict[str, str] | None = None,
          **popen: object) -> subprocess.Popen:
    # The repository's Makefile and venv, run from a scratch folder so that its .env is the
    # test's own; -o: the venv is there already (installing it is CI's first step).
    command = ["make", "--no-print-directory", "-f", str(REPO / "Makefile"),
               "-o", f"{VENV}/.installed-device", f"VENV={VENV}", *args]
    return subprocess.Popen(command, cwd=cwd, env={**os.environ, **(env or {})}, **popen)


def test_make_serve_adds_no_host_or_port_of_its_own(tmp_path: Path) -> None:
    # The defaults are the settings' (127.0.0.1:8000, as the README's table says).
    dry = _make("-n", "serve", cwd=tmp_path, stdout=subprocess.PIPE, text=True)
    command = dry.communicate(timeout=60)[0].strip()
    assert command.endswith("-m device serve"), command
    (tmp_path / ".env").write_text("DIGITS_CAMERA=none\n")
    dry = _make("-n", "serve", cwd=tmp_path, stdout=subprocess.PIPE, text=True)
    assert dry.communicate(timeout=60)[0].strip().endswith("-m device serve --env-file .env")


def test_make_serve_honours_the_environment_and_the_env_file(
    tmp_path: Path, digit_model_path: Path
) -> None:
    port = free_port()
    # The host and camera come from .env; the port from the environment, which wins over .env.
    (tmp_path / ".env").write_text(
        f"DIGITS_HOST=127.0.0.2\nDIGITS_PORT=1\nDIGITS_CAMERA=none\nDIGITS_MODEL={digit_model_path}\n"
    )
    log = tmp_path / "make.log"
    with log.open("wb") as out:
        make = _make("serve", cwd=tmp_path, env={"DIGITS_PORT": str(port)}, stdout=out,
                     stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        ready = None
        while time.monotonic() < deadline and make.poll() is None:
            try:
                ready = httpx.get(f"http://127.0.0.2:{port}/readyz", timeout=2)
                break
            except httpx.TransportError:
                time.sleep(0.2)
        assert ready is not None, log.read_text()
        assert ready.status_code == 200
        assert ready.json()["camera"]["enabled"] is False
        try:
            httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2)
            raise AssertionError("answered on 127.0.0.1 although DIGITS_HOST=127.0.0.2")
        except httpx.TransportError:
            pass
    finally:
        os.killpg(make.pid, signal.SIGTERM)  # make and the service it started
        make.wait(30)
    assert f"listening on http://127.0.0.2:{port}" in log.read_text()
