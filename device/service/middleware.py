"""Around every request: the bearer-token check, one JSON log line, and the request metrics;
and HEAD answered wherever GET is.

Plain ASGI middlewares (not BaseHTTPMiddleware) so streamed bodies pass through untouched.
"""

from __future__ import annotations

import hmac
import time
from typing import Any
from urllib.parse import unquote

from starlette.requests import cookie_parser
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from device.service.errors import error_body
from device.service.logs import log_request
from device.service.metrics import ServiceMetrics

OPEN_PATHS = frozenset({"/healthz"})
# A browser cannot put a header on <img src="/stream.mjpg">: the preview page's login box keeps
# the token in this cookie (SameSite=Strict, so other sites' pages cannot send it).
TOKEN_COOKIE = "digits_token"


def _header(scope: Scope, name: bytes) -> bytes | None:
    for key, value in scope.get("headers", []):
        if key.lower() == name:
            return value
    return None


def _cookie(scope: Scope, name: str) -> bytes | None:
    header = _header(scope, b"cookie")
    value = cookie_parser(header.decode("latin-1")).get(name) if header else None
    return unquote(value).encode() if value is not None else None


class RequestMiddleware:
    def __init__(
        self,
        app: ASGIApp,
        metrics: ServiceMetrics,
        token: str | None,
        login_page: bytes | None = None,
    ) -> None:
        self.app = app
        self.metrics = metrics
        self.token = token.encode() if token else None
        self.login_page = login_page  # answered instead of the 401 JSON on GET /

    def _authorized(self, scope: Scope) -> bool:
        if self.token is None or scope["path"] in OPEN_PATHS:
            return True
        header = _header(scope, b"authorization") or b""
        scheme, _, credentials = header.partition(b" ")
        if scheme.lower() == b"bearer" and hmac.compare_digest(credentials.strip(), self.token):
            return True
        return hmac.compare_digest(_cookie(scope, TOKEN_COOKIE) or b"", self.token)

    def _unauthorized(self, scope: Scope) -> Response:
        # Bearer header without a value, or a wrong one: the same answer, no hint which.
        headers = {"WWW-Authenticate": 'Bearer realm="digits"'}
        if self.login_page is not None and scope["path"] == "/":
            # A person opening the preview page gets its login box rather than JSON.
            return HTMLResponse(self.login_page, status_code=401, headers=headers)
        return JSONResponse(
            error_body(
                "unauthorized",
                "a valid bearer token is required",
                "an 'Authorization: Bearer <token>' header with the server's DIGITS_TOKEN",
            ),
            status_code=401,
            headers=headers,
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500
        scope.setdefault("state", {})

        async def send_and_record(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            if self._authorized(scope):
                await self.app(scope, receive, send_and_record)
            else:
                await self._unauthorized(scope)(scope, receive, send_and_record)
        finally:
            self._record(scope, status, time.perf_counter() - started)

    def _record(self, scope: Scope, status: int, seconds: float) -> None:
        route = scope.get("route")
        endpoint = getattr(route, "path", None) or "unmatched"
        method = scope["method"]
        self.metrics.observe_request(endpoint, method, status, seconds)
        client = scope.get("client")
        fields: dict[str, Any] = {
            "method": method,
            "path": scope["path"],
            "status": status,
            "duration_ms": round(seconds * 1000, 2),
            "client": client[0] if client else None,
        }
        fields.update(scope["state"].get("log_fields", {}))
        log_request(fields)


class _HeadersSentError(Exception):
    """Stops the app once a HEAD request's headers are out: all it would send next is a body."""


class HeadAsGet:
    """HEAD answered on every GET path with GET's status and headers and no body (RFC 9110
    §9.3.2: uptime monitors and `curl -I` probe with it); FastAPI answers only the methods a
    route lists, so everything but the health checks was 405. Listing HEAD on every route
    instead put a second operation under the same operationId on each path of /openapi.json,
    and left the stream routes running their endless bodies for nobody.

    The app sees a GET, and is stopped by an exception from `send` as soon as it has sent its
    headers: a StreamingResponse sends them before it first asks its body for anything, so a
    HEAD on /stream.mjpg or /readings/stream starts no stream and holds no viewer or client.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "HEAD":
            await self.app(scope, receive, send)
            return

        async def headers_only(message: Message) -> None:
            await send(message)
            if message["type"] == "http.response.start":
                await send({"type": "http.response.body", "body": b"", "more_body": False})
                raise _HeadersSentError

        # A copy: the server goes on seeing the HEAD it received (so uvicorn expects no body
        # whatever Content-Length the headers give), and so does RequestMiddleware's log line.
        as_get = {**scope, "method": "GET"}
        try:
            await self.app(as_get, receive, headers_only)
        except _HeadersSentError:
            pass
        finally:
            # The router leaves the matched route on the scope it was given; RequestMiddleware
            # counts the request under it.
            if "route" in as_get:
                scope["route"] = as_get["route"]
