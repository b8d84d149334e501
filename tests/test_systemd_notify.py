"""device.systemd_notify: datagrams to path and abstract sockets, and the watchdog loop."""

from __future__ import annotations

import asyncio
import os
import socket
from pathlib import Path

import pytest

from device import systemd_notify


def _listener(address: str | bytes) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(address)
    sock.settimeout(10)  # a hang guard only: datagrams on one machine arrive at once
    return sock


def test_notify_sends_the_state_to_a_path_socket(tmp_path: Path, monkeypatch):
    path = tmp_path / "notify.sock"
    with _listener(str(path)) as sock:
        monkeypatch.setenv("NOTIFY_SOCKET", str(path))
        assert systemd_notify.notify("READY=1") is True
        assert sock.recv(4096) == b"READY=1"


def test_notify_reaches_an_abstract_socket(monkeypatch):
    name = f"pi-digits-test-{os.getpid()}"
    with _listener(b"\0" + name.encode()) as sock:
        monkeypatch.setenv("NOTIFY_SOCKET", "@" + name)
        assert systemd_notify.notify("STATUS=serving on :8000") is True
        assert sock.recv(4096) == b"STATUS=serving on :8000"


def test_notify_outside_systemd_is_a_quiet_no_op(monkeypatch):
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    assert systemd_notify.notify("READY=1") is False


def test_notify_to_a_vanished_socket_reports_failure_instead_of_raising(tmp_path, monkeypatch):
    monkeypatch.setenv("NOTIFY_SOCKET", str(tmp_path / "gone.sock"))
    assert systemd_notify.notify("WATCHDOG=1") is False
    monkeypatch.setenv("NOTIFY_SOCKET", "vsock:2:1234")
    assert systemd_notify.notify("READY=1") is False


@pytest.mark.parametrize(
    ("usec", "pid", "expected"),
    [
        ("30000000", None, 15.0),  # WatchdogSec=30 → ping every 15 s
        ("1000000", "self", 0.5),
        ("1000000", "1", None),  # inherited by a child: not ours to ping
        ("0", None, None),
        ("soon", None, None),
        (None, None, None),
    ],
)
def test_watchdog_interval_is_half_of_watchdog_usec_for_our_pid_only(
    monkeypatch, usec, pid, expected
):
    for name, value in (("WATCHDOG_USEC", usec), ("WATCHDOG_PID", pid)):
        if value is None:
            monkeypatch.delenv(name, raising=False)
        else:
            monkeypatch.setenv(name, str(os.getpid()) if value == "self" else value)
    assert systemd_notify.watchdog_interval() == expected


def test_watchdog_loop_pings_only_while_healthy(tmp_path: Path, monkeypatch):
    path = tmp_path / "notify.sock"
    monkeypatch.setenv("NOTIFY_SOCKET", str(path))
    health = iter([True, True, False, False, "boom", True])
    checks: list[object] = []

    def healthy() -> bool:
        value = next(health)
        checks.append(value)
        if value == "boom":
            raise RuntimeError("camera loop state unreadable")
        return value

    async def run() -> None:
        task = asyncio.create_task(systemd_notify.watchdog_loop(healthy, interval=0.001))
        while len(checks) < 6:
            await asyncio.sleep(0.001)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    with _listener(str(path)) as sock:
        asyncio.run(run())
        sock.setblocking(False)
        pings = []
        while True:
            try:
                pings.append(sock.recv(4096))
            except BlockingIOError:
                break
    # Three healthy checks → three pings; the two unhealthy ones and the raising one send none.
    assert pings == [b"WATCHDOG=1"] * 3


def test_watchdog_loop_accepts_an_async_health_check(tmp_path: Path, monkeypatch):
    path = tmp_path / "notify.sock"
    monkeypatch.setenv("NOTIFY_SOCKET", str(path))

    async def healthy() -> bool:
        return True

    async def run() -> None:
        task = asyncio.create_task(systemd_notify.watchdog_loop(healthy, interval=0.001))
        ping = await asyncio.get_running_loop().run_in_executor(None, sock.recv, 4096)
        task.cancel()
        assert ping == b"WATCHDOG=1"

    with _listener(str(path)) as sock:
        asyncio.run(run())


def test_watchdog_loop_returns_at_once_when_systemd_wants_no_watchdog(monkeypatch):
    monkeypatch.delenv("WATCHDOG_USEC", raising=False)
    asyncio.run(asyncio.wait_for(systemd_notify.watchdog_loop(lambda: True), timeout=10))
