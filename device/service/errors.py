"""One JSON shape for every error the service answers with.

`{"error": "<code>", "detail": "<what was wrong>", "expected": "<what would work>"}` — `expected`
only where there is something the client can do. Client mistakes are 4xx, never 500.
"""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

log = logging.getLogger("device.service")


class ServiceError(Exception):
    """An answer other than 2xx, with a reason a person can act on."""

    def __init__(
        self,
        status: int,
        code: str,
        detail: str,
        expected: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.code = code
        self.detail = detail
        self.expected = expected
        self.headers = headers


def error_body(code: str, detail: str, expected: str | None = None) -> dict[str, str]:
    body = {"error": code, "detail": detail}
    if expected:
        body["expected"] = expected
    return body


def error_response(error: ServiceError) -> JSONResponse:
    return JSONResponse(
        error_body(error.code, error.detail, error.expected),
        status_code=error.status,
        headers=error.headers,
    )


_HTTP_CODES = {404: "not_found", 405: "method_not_allowed", 401: "unauthorized"}


# The methods a route here can take; HEAD is middleware.HeadAsGet's, wherever GET is.
_METHODS = ("DELETE", "GET", "OPTIONS", "PATCH", "POST", "PUT")


def _allowed_methods(request: Request, allow: str) -> list[str]:
    """Every method the request's path takes, for a 405's Allow header.

    The router answers a 405 from the first route whose path matches, so its Allow header left
    out the methods of the path's other routes (GET /predict is one route, POST another). Each
    method is asked of the router as the request would be, through the routes' own matching
    (FastAPI nests included routers' routes where walking them would need its internals).
    """
    methods = set(allow.split(", ")) - {""}
    for method in _METHODS:
        scope = {**request.scope, "method": method}
        if any(route.matches(scope)[0] is Match.FULL for route in request.app.router.routes):
            methods.add(method)
    if "GET" in methods:
        methods.add("HEAD")
    return sorted(methods)


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ServiceError)
    async def _service_error(_: Request, exc: ServiceError) -> JSONResponse:
        return error_response(exc)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = _HTTP_CODES.get(exc.status_code, f"http_{exc.status_code}")
        headers = dict(exc.headers or {})
        if exc.status_code == 405 and "Allow" in headers:
            headers["Allow"] = ", ".join(_allowed_methods(request, headers["Allow"]))
        return JSONResponse(
            error_body(code, str(exc.detail)), status_code=exc.status_code, headers=headers
        )

    @app.exception_handler(RequestValidationError)
    async def _validation_error(_: Request, exc: RequestValidationError) -> JSONResponse:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in err['loc'])}: {err['msg']}" for err in exc.errors()
        )
        return JSONResponse(error_body("invalid_request", problems), status_code=422)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        # A bug, not a client mistake: log it with its traceback for the journal, answer briefly.
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return JSONResponse(
            error_body("internal_error", f"{type(exc).__name__}: the server failed; see its log"),
            status_code=500,
        )
