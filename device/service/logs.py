"""Structured logging: one JSON object per line on stderr, which journald stores as is."""

from __future__ import annotations

import json
import logging
import sys
import time
from typing import Any, TextIO

from pydantic_core import PydanticSerializationError, to_json

# Attributes every LogRecord has; anything else on a record came from `extra=` and is a field.
# uvicorn's "color_message" duplicates "msg" with terminal escapes.
_STANDARD = set(vars(logging.makeLogRecord({}))) | {
    "message",
    "asctime",
    "taskName",
    "color_message",
}


_encode_with_json = json.JSONEncoder(default=str, ensure_ascii=False).encode


def _encode(entry: dict[str, Any]) -> str:
    # pydantic's encoder (Rust) takes a quarter of the time of json's; it refuses only bytes
    # that are not UTF-8, which json's `default=str` writes as their repr.
    try:
        return to_json(entry, fallback=str).decode()
    except PydanticSerializationError:
        return _encode_with_json(entry)


class JsonFormatter(logging.Formatter):
    """One JSON object per record. The service writes one per request, so it is kept lean:
    the timestamp's seconds are formatted once per second, the encoder is built once."""

    def __init__(self) -> None:
        super().__init__()
        self._second = -1
        self._second_text = ""

    def timestamp(self, created: float) -> str:
        """``created`` (time.time()) as UTC ISO 8601 to the millisecond."""
        second = int(created)
        if second != self._second:
            self._second_text = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
            self._second = second
        return f"{self._second_text}.{int((created - second) * 1000):03d}Z"

    def line(self, created: float, level: str, logger: str, msg: str,
             fields: dict[str, Any]) -> str:
        return _encode({"ts": self.timestamp(created), "level": level, "logger": logger,
                        "msg": msg, **fields})

    def format(self, record: logging.LogRecord) -> str:
        fields = {k: v for k, v in vars(record).items() if k not in _STANDARD}
        if record.exc_info:
            fields["exception"] = self.formatException(record.exc_info)
        return self.line(record.created, record.levelname.lower(), record.name,
                         record.getMessage(), fields)


class _JsonLineHandler(logging.StreamHandler):
    def handleError(self, record: logging.LogRecord) -> None:  # noqa: N802 (logging's name)
        # logging's default prints a traceback to sys.stderr, which may be the pipe whose lines
        # come back here as records (device.native_output): a loop. A log that cannot be
        # written (journald gone) has nowhere to say so.
        return


ACCESS = "device.service.access"
_access = logging.getLogger(ACCESS)


def log_request(fields: dict[str, Any]) -> None:
    """The access log's line for one request (logger device.service.access, message
    "request"). Where it goes to configure_logging's handler alone, the line is written to it
    straight: a logging record, its filters and handler calls took 7% of the service's CPU
    for 28×28 uploads at full load (553 against 515 µs a request with wrk, A/B in one run),
    several times the line itself. Anywhere else (a test's capturing handler, a filter) it
    goes through `logging` as any record."""
    if not _access.isEnabledFor(logging.INFO):
        return
    handlers = logging.root.handlers
    handler = handlers[0] if len(handlers) == 1 else None
    if (type(handler) is not _JsonLineHandler or handler.filters or _access.handlers
            or _access.filters or _access.disabled):
        _access.info("request", extra=fields)
        return
    line = handler.formatter.line(time.time(), "info", ACCESS, "request", fields)
    with handler.lock:
        try:
            handler.stream.write(line + handler.terminator)
            handler.flush()
        except Exception:  # as handleError: a log that cannot be written has nowhere to say so
            pass


def configure_logging(level: str, stream: TextIO | None = None) -> None:
    """Route every logger (ours and uvicorn's) through one JSON handler on `stream` (stderr)."""
    handler = _JsonLineHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter())
    # The logging HOWTO's "Optimization": what no JSON line shows is not collected per record
    # (the caller's file and line walk the stack; thread and process names).
    logging._srcfile = None
    logging.logThreads = logging.logProcesses = logging.logMultiprocessing = False
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logger = logging.getLogger(name)
        logger.handlers[:] = []
        logger.propagate = True
    # One line per request is ours (device.service.access); uvicorn's would be a second.
    logging.getLogger("uvicorn.access").disabled = True
