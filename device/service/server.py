"""Run the app on uvicorn, programmatically, with a hook for "the socket is listening".

systemd's `Type=notify` wants READY=1 only once the model is loaded *and* the port accepts
connections, so the hook waits for `uvicorn.Server.started` (set after the lifespan startup and
the bind). Then it sends READY=1 and starts the watchdog task, which pings WATCHDOG=1 every half
`WatchdogSec=` only while the event loop runs (the task itself is on it) and the camera loop's
heartbeat is fresh. Outside systemd (no $NOTIFY_SOCKET) both are no-ops.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import signal
import socket
from collections.abc import Awaitable, Callable

import uvicorn

from device import systemd_notify
from device.service.app import create_app
from device.service.context import ServiceContext
from device.service.settings import ServiceSettings

log = logging.getLogger("device.service")

# Long enough for a camera read in flight to finish; short enough that systemd's stop is quick.
GRACEFUL_SHUTDOWN_S = 10

# Longer than the idle expiry of common client pools (httpx, aiohttp: 5 s; uvicorn's default is
# also 5 s). When both sides give up at the same moment, a client can send a request on a
# connection the server is just closing and see it dropped; a longer server timeout means the
# client always retires an idle connection first.
KEEP_ALIVE_S = 15
# Connections (and requests) at once; one more is answered 503 at once and closed. Without a
# limit, ~1,000 connections that never sent anything used up the process's files (systemd's
# default soft limit is 1,024): every accept failed, /healthz and uploads hung, and the log
# filled with tracebacks. A Pi's clients are a few pollers, a page or two and uploads.
MAX_CONNECTIONS = 256

# uvicorn's own default, which it passes to listen() again.
LISTEN_BACKLOG = 2048

ListeningHook = Callable[[], Awaitable[None]]


def systemd_hooks(context: ServiceContext) -> ListeningHook:
    """READY=1 now, then WATCHDOG=1 while the loop and the camera loop are healthy."""

    async def on_listening() -> None:
        settings = context.settings
        systemd_notify.notify(
            f"READY=1\nSTATUS=serving {context.model.name} on {settings.host}:{settings.port}"
        )
        await systemd_notify.watchdog_loop(context.camera.healthy)

    return on_listening


def http_protocol() -> type[asyncio.Protocol] | str:
    """httptools, which parses requests in C (~15% more uploads a second than the pure-Python
    h11), with limits on a request's head (http_guard); h11 where httptools is not installed
    (it has wheels for x86_64 and aarch64)."""
    try:
        from device.service.http_guard import GuardedHttpToolsProtocol
    except ImportError:
        return "h11"
    return GuardedHttpToolsProtocol


def http_parser(config: uvicorn.Config) -> str:
    """The HTTP/1.1 parser uvicorn uses ("httptools" or "h11"), once `config` is loaded."""
    uvicorns = [c for c in config.http_protocol_class.__mro__
                if c.__module__.startswith("uvicorn.protocols.http.")]
    return uvicorns[0].__module__.rpartition(".")[2].removesuffix("_impl")


def announce_address(settings: ServiceSettings, config: uvicorn.Config) -> ListeningHook:
    """One line saying where to point a browser or curl, once the socket listens; it also
    names the HTTP parser, which sets how many uploads a second the service can take."""

    async def on_listening() -> None:
        log.info(
            "listening on http://%s:%d (the API is described at /docs)",
            settings.host, settings.port, extra={"http_parser": http_parser(config)},
        )

    return on_listening


async def _wait_until_listening(server: uvicorn.Server, serving: asyncio.Task) -> bool:
    while not server.started:
        if serving.done():
            return False
        await asyncio.sleep(0.02)
    return True


class ListenError(Exception):
    """The port cannot be listened on (message says which and why)."""


def listen_socket(host: str, port: int) -> socket.socket:
    """A bound socket for host:port, so a taken port is one clear error before anything starts."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
        sock = socket.socket(family, kind, proto)
    except (OSError, UnicodeError) as exc:
        raise ListenError(f"cannot listen on {host}:{port}: {exc}; check --host") from None
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        # Listening now, not when uvicorn does: SO_REUSEADDR lets a second service bind the
        # port until one listens, and that one's listen then failed in uvicorn with a traceback.
        sock.listen(LISTEN_BACKLOG)
    except OSError as exc:
        sock.close()
        taken = exc.errno == errno.EADDRINUSE
        hint = "another program uses it; pick another --port" if taken else "check --host"
        raise ListenError(f"cannot listen on {host}:{port}: {exc.strerror}; {hint}") from None
    sock.set_inheritable(True)
    return sock


async def serve(
    server: uvicorn.Server,
    on_listening: list[ListeningHook] | tuple[ListeningHook, ...] = (),
    sockets: list[socket.socket] | None = None,
) -> None:
    """Run `server` until it exits; each hook runs as a task once the socket listens."""
    serving = asyncio.create_task(server.serve(sockets=sockets))
    hooks: list[asyncio.Task] = []
    if await _wait_until_listening(server, serving):
        hooks = [asyncio.create_task(hook()) for hook in on_listening]
    try:
        await serving
    finally:
        systemd_notify.notify("STOPPING=1")
        for task in hooks:
            task.cancel()
        for task in hooks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task


def run(settings: ServiceSettings, context: ServiceContext) -> None:
    """Serve until SIGTERM/SIGINT; in-flight requests finish, then the camera is released.

    Raises ListenError (before the camera is touched) when the port cannot be had.
    """
    sock = listen_socket(settings.host, settings.port)
    config = uvicorn.Config(
        create_app(settings, context),
        host=settings.host,
        port=settings.port,
        log_config=None,  # ours: JSON lines (device.service.logs)
        access_log=False,  # one line per request is written by our middleware
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_S,
        timeout_keep_alive=KEEP_ALIVE_S,
        limit_concurrency=MAX_CONNECTIONS,
        server_header=False,
        ws="none",  # no websocket routes; skips importing a websockets stack at start-up
        http=http_protocol(),
        # The loop stays asyncio's own, as run() starts it, even where uvloop is installed.
        loop="asyncio",
    )
    server = uvicorn.Server(config)
    # uvicorn handles SIGTERM (graceful shutdown), then re-raises it once done so the default
    # action can run. By then everything is closed: a no-op handler lets the process exit 0.
    signal.signal(signal.SIGTERM, lambda *_: None)
    hooks = [announce_address(settings, config), systemd_hooks(context)]
    asyncio.run(serve(server, hooks, sockets=[sock]))
