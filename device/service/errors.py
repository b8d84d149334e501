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


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ServiceError)
    async def _service_error(_: Request, exc: ServiceError) -> JSONResponse:
        return error_response(exc)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = _HTTP_CODES.get(exc.status_code, f"http_{exc.status_code}")
        headers = dict(exc.headers or {})
        allowed = headers.get("Allow", "").split(", ")
        if exc.status_code == 405 and "GET" in allowed and "HEAD" not in allowed:
            # middleware.HeadAsGet answers HEAD wherever GET is; the router, which never sees a
            # HEAD, would leave it out of the methods a 405 says the path takes.
            headers["Allow"] = ", ".join([*allowed, "HEAD"])
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
