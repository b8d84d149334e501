"""Tell systemd how the service is doing (sd_notify(3)) without libsystemd or any package.

systemd hands a `Type=notify` service the address of a datagram socket in `$NOTIFY_SOCKET`
(a path, or an abstract socket written with a leading `@`). One datagram `READY=1` says "started";
`WATCHDOG=1` every half `WatchdogSec=` says "still alive". Outside systemd the variable is unset
and every call here is a cheap no-op, so the service calls them unconditionally.

The watchdog pings run as a task on the service's own event loop and only while a health check
passes: a blocked loop or a stuck camera loop stops the pings, and systemd restarts the service.
A ping from a separate thread would keep a hung service "alive" and defeat the point.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import os
import socket
from collections.abc import Awaitable, Callable

log = logging.getLogger(__name__)

HealthCheck = Callable[[], bool | Awaitable[bool]]


def _socket_address(raw: str) -> str | bytes | None:
    if raw.startswith("@"):
        # Abstract namespace: a leading NUL byte instead of a path (Linux only).
        return b"\0" + raw[1:].encode()
    if raw.startswith("/"):
        return raw
    return None  # vsock ("vsock:...") and other forms are not used for a service on a Pi


def notify(state: str) -> bool:
    """Send one sd_notify message (e.g. "READY=1", "WATCHDOG=1", "STOPPING=1", "STATUS=...").

    Returns True when systemd's socket took the datagram, False when not run under systemd
    or the send failed (logged; a notification must never take the service down).
    """
    raw = os.environ.get("NOTIFY_SOCKET", "")
    if not raw:
        return False
    address = _socket_address(raw)
    if address is None:
        log.warning("NOTIFY_SOCKET=%r is not a unix socket address; not notifying systemd", raw)
        return False
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
            sock.connect(address)
            sock.sendall(state.encode())
    except OSError as exc:
        log.warning("could not notify systemd (%s) at %s: %s", state.split("=", 1)[0], raw, exc)
        return False
    return True


def watchdog_interval() -> float | None:
    """Seconds between watchdog pings (half of `WatchdogSec=`), or None when none is asked for.

    systemd sets `WATCHDOG_USEC` (and `WATCHDOG_PID`, the process meant to ping). A pid that is
    not ours means the variables were inherited by a child: that child must not ping.
    """
    usec = os.environ.get("WATCHDOG_USEC", "")
    pid = os.environ.get("WATCHDOG_PID", "")
    try:
        usec_value = int(usec)
    except ValueError:
        return None
    if usec_value <= 0:
        return None
    if pid:
        try:
            if int(pid) != os.getpid():
                return None
        except ValueError:
            return None
    return usec_value / 2 / 1_000_000


async def _is_healthy(check: HealthCheck) -> bool:
    try:
        result = check()
        if inspect.isawaitable(result):
            result = await result
    except Exception:
        log.exception("health check for the systemd watchdog raised; treating as unhealthy")
        return False
    return bool(result)


async def watchdog_loop(healthy: HealthCheck, interval: float | None = None) -> None:
    """Ping `WATCHDOG=1` every `interval` seconds while `healthy()` returns True.

    Run it as a task on the service's event loop (`asyncio.create_task(watchdog_loop(check))`)
    and cancel it at shutdown. Returns at once when systemd asked for no watchdog. `healthy`
    may be a plain or an async callable; it should be cheap (e.g. "the camera loop ticked
    within the last N seconds"), never a capture.
    """
    interval = watchdog_interval() if interval is None else interval
    if interval is None:
        return
    was_healthy = True
    while True:
        is_healthy = await _is_healthy(healthy)
        if is_healthy:
            notify("WATCHDOG=1")
        if is_healthy != was_healthy:
            # Said once per change, not every interval: the journal stays readable.
            if is_healthy:
                log.info("healthy again; resuming systemd watchdog pings")
            else:
                log.error("unhealthy; withholding systemd watchdog pings so systemd restarts us")
            was_healthy = is_healthy
        await asyncio.sleep(interval)
