"""systemd/pi-digits.service: systemd accepts it, it keeps the camera reachable, and the service it
starts tells systemd the truth (READY=1 once ready, WATCHDOG=1 only while alive)."""

from __future__ import annotations

import os
import shlex
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import REPO

UNIT = REPO / "systemd" / "pi-digits.service"
ENV_EXAMPLE = REPO / "systemd" / "digits.env.example"
INSTALL_PREFIX = "/opt/pi-digits"
# A hang guard, not a speed requirement: importing OpenCV, LiteRT and FastAPI on a busy
# 2-core CI machine can take a while.
START_GUARD_S = 120


def parse_unit(path: Path) -> dict[str, dict[str, list[str]]]:
    """Sections → key → every value (systemd allows a key more than once)."""
    sections: dict[str, dict[str, list[str]]] = {}
    current: dict[str, list[str]] | None = None
    for number, raw in enumerate(path.read_text().splitlines(), 1):
        line = raw.strip()
        if not line or line[0] in "#;":
            continue
        assert not line.endswith("\\"), f"{path}:{number}: keep settings on one line"
        if line.startswith("["):
            current = sections.setdefault(line.strip("[]"), {})
            continue
        assert current is not None, f"{path}:{number}: setting outside a section"
        key, _, value = line.partition("=")
        current.setdefault(key.strip(), []).append(value.strip())
    return sections


def parse_env_file(path: Path) -> dict[str, str]:
    values = {}
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if line and not line.startswith("#"):
            key, _, value = line.partition("=")
            values[key] = value
    return values


def map_to_checkout(text: str) -> str:
    """Installed paths → this checkout: the venv is .venv, the models are models/."""
    return (
        text.replace(f"{INSTALL_PREFIX}/venv", str(REPO / ".venv"))
        .replace(f"{INSTALL_PREFIX}/models", str(REPO / "models"))
        .replace(INSTALL_PREFIX, str(REPO))
    )


@pytest.fixture(scope="module")
def unit() -> dict[str, dict[str, list[str]]]:
    return parse_unit(UNIT)


def last(unit: dict, section: str, key: str) -> str | None:
    values = unit.get(section, {}).get(key)
    return values[-1] if values else None


def test_systemd_analyze_verify_prints_nothing(tmp_path: Path):
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze not installed (apt-get install systemd)")
    # verify checks that ExecStart's program exists, so point it at this checkout's venv;
    # everything else, User= included, is verified exactly as shipped.
    mapped = tmp_path / UNIT.name
    mapped.write_text(map_to_checkout(UNIT.read_text()))
    result = subprocess.run(
        [analyze, "verify", str(mapped)], capture_output=True, text=True, timeout=60, check=False
    )
    assert (result.returncode, result.stdout + result.stderr) == (0, "")


def test_unit_restarts_forever_and_keeps_the_camera_reachable(unit):
    assert last(unit, "Unit", "After") == "network-online.target"
    assert last(unit, "Unit", "Wants") == "network-online.target"
    assert last(unit, "Service", "Restart") in {"always", "on-failure"}
    assert last(unit, "Service", "RestartSec")
    assert last(unit, "Unit", "StartLimitIntervalSec") == "0"  # never gives up for good
    assert last(unit, "Service", "Type") == "notify"
    assert last(unit, "Service", "NotifyAccess") == "main"
    assert last(unit, "Service", "WatchdogSec")
    assert last(unit, "Service", "User") == "pi-digits"
    assert "video" in last(unit, "Service", "SupplementaryGroups").split()
    # Each of these would hide /dev/video*, /dev/media* or /dev/dma_heap from the service.
    for setting in ("PrivateDevices", "ProtectClock", "DevicePolicy", "DeviceAllow"):
        assert setting not in unit["Service"], f"{setting}= would hide the camera"
    assert "AF_NETLINK" in last(unit, "Service", "RestrictAddressFamilies").split()


def test_unit_is_hardened(unit):
    service = unit["Service"]
    for key, value in {
        "NoNewPrivileges": "yes",
        "ProtectSystem": "strict",
        "ProtectHome": "yes",
        "PrivateTmp": "yes",
        "ProtectKernelTunables": "yes",
        "ProtectControlGroups": "yes",
        "LockPersonality": "yes",
        "RestrictRealtime": "yes",
        "SystemCallArchitectures": "native",
        "CapabilityBoundingSet": "",
    }.items():
        assert service.get(key) == [value], f"{key}={value} expected"
    assert last(unit, "Service", "MemoryMax")
    assert "ReadWritePaths" not in service  # it writes nothing but its private /tmp


def test_env_file_names_are_the_services_settings(unit):
    from device.service.settings import ServiceSettings

    assert "-/etc/pi-digits/digits.env" in unit["Service"]["EnvironmentFile"]
    text = ENV_EXAMPLE.read_text()
    named = {
        line.lstrip("#").split("=", 1)[0]
        for line in text.splitlines()
        if line.lstrip("#").startswith("DIGITS_") and "=" in line
    }
    known = {f"DIGITS_{field.upper()}" for field in ServiceSettings.model_fields}
    assert named, "the example names no setting"
    assert named <= known, f"not settings of the service: {sorted(named - known)}"
    for required in ("HOST", "PORT", "MODEL", "CAMERA", "ROI", "THREADS", "TOKEN", "LOG_LEVEL"):
        assert f"DIGITS_{required}" in named, f"DIGITS_{required} is not documented"
    # Every value the example sets (uncommented) must be accepted by the service.
    example = parse_env_file(ENV_EXAMPLE)
    ServiceSettings(**{key.removeprefix("DIGITS_").lower(): v for key, v in example.items()})


# --- the unit's own command line, run the way systemd runs it ---------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def readyz_status(port: int) -> int | None:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=5) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code
    except OSError:
        return None


def receive(sock: socket.socket, timeout: float) -> bytes | None:
    sock.settimeout(timeout)
    try:
        return sock.recv(4096)
    except TimeoutError:
        return None


def drain(sock: socket.socket) -> list[bytes]:
    messages = []
    while (message := receive(sock, 0.001)) is not None:
        messages.append(message)
    return messages


def wait_stopped(pid: int) -> None:
    """Until the kernel reports the process stopped (state T), so no ping is still in flight."""
    for _ in range(1000):
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        if state in {"T", "t"}:
            return
        time.sleep(0.01)
    raise AssertionError(f"process {pid} never stopped")


def service_command(unit: dict, port: int, notify_path: Path, camera: str) -> tuple[list, dict]:
    command = shlex.split(map_to_checkout(last(unit, "Service", "ExecStart")))
    ours = ("DIGITS_", "NOTIFY_", "WATCHDOG_")
    env = {k: v for k, v in os.environ.items() if not k.startswith(ours)}
    for assignment in unit["Service"].get("Environment", []):
        key, _, value = map_to_checkout(assignment).partition("=")
        env[key] = value
    env.update(parse_env_file(ENV_EXAMPLE))  # EnvironmentFile= as installed
    env.update(
        DIGITS_HOST="127.0.0.1",  # tests listen on loopback only
        DIGITS_PORT=str(port),
        DIGITS_CAMERA=camera,
        NOTIFY_SOCKET=str(notify_path),
        WATCHDOG_USEC="1000000",  # WatchdogSec=1s → a ping every 0.5 s
    )
    return command, env


def test_execstart_says_ready_when_ready_and_stops_pinging_when_hung(
    unit, tmp_path: Path, handwriting_dir: Path
):
    model = Path(map_to_checkout(f"{INSTALL_PREFIX}/models/digitnet_int8.tflite"))
    if not model.is_file():
        pytest.fail(f"the shipped model {model} is missing")
    port = free_port()
    notify_path = tmp_path / "notify.sock"
    image = sorted((handwriting_dir / "images").glob("*.png"))[0]
    command, env = service_command(unit, port, notify_path, camera=f"file:{image}")
    log_path = tmp_path / "service.log"  # a file, not a pipe nobody drains while it runs
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock, log_path.open("w") as log:
        sock.bind(str(notify_path))
        process = subprocess.Popen(
            command,
            cwd=map_to_checkout(last(unit, "Service", "WorkingDirectory")),
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            # READY=1 is the first thing it says, and when it says it /readyz already answers 200.
            deadline = time.monotonic() + START_GUARD_S
            first = None
            while first is None and time.monotonic() < deadline and process.poll() is None:
                first = receive(sock, 1.0)
            assert first is not None, f"no READY=1; service said: {log_path.read_text()[-2000:]}"
            assert first.split(b"\n")[0] == b"READY=1"
            assert readyz_status(port) == 200

            pings = [receive(sock, 10.0) for _ in range(3)]
            assert pings == [b"WATCHDOG=1"] * 3

            # A hung service: every thread stopped. No ping may arrive for 5 intervals.
            process.send_signal(signal.SIGSTOP)
            wait_stopped(process.pid)
            drain(sock)
            assert receive(sock, 2.5) is None
            # ...and it was the hang that silenced it: released, it pings again.
            process.send_signal(signal.SIGCONT)
            assert receive(sock, 10.0) == b"WATCHDOG=1"

            process.send_signal(signal.SIGTERM)
            assert process.wait(timeout=60) == 0
            assert b"STOPPING=1" in drain(sock)
        finally:
            if process.poll() is None:
                process.send_signal(signal.SIGCONT)
                process.kill()
                process.wait()


def test_the_unit_sets_the_installed_model_and_the_example_shows_it(unit):
    env = parse_env_file(ENV_EXAMPLE)
    assert "DIGITS_MODEL" not in env  # the unit's Environment= decides; the example only shows it
    model_line = next(a for a in unit["Service"]["Environment"] if a.startswith("DIGITS_MODEL="))
    assert model_line == f"DIGITS_MODEL={INSTALL_PREFIX}/models/digitnet_int8.tflite"
    assert f"#{model_line}" in ENV_EXAMPLE.read_text()
