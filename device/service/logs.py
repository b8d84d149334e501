"""Structured logging: one JSON object per line on stderr, which journald stores as is."""

from __future__ import annotations

import json
import logging
import sys
import time
from typing import TextIO

# Attributes every LogRecord has; anything else on a record came from `extra=` and is a field.
# uvicorn's "color_message" duplicates "msg" with terminal escapes.
_STANDARD = set(vars(logging.makeLogRecord({}))) | {
    "message",
    "asctime",
    "taskName",
    "color_message",
}


_encode = json.JSONEncoder(default=str, ensure_ascii=False).encode


class JsonFormatter(logging.Formatter):
    """One JSON object per record. The service writes one per request, so it is kept lean:
    the timestamp's seconds are formatted once per second, the encoder is built once."""

    def __init__(self) -> None:
        super().__init__()
        self._second = -1
        self._second_text = ""

    def _timestamp(self, record: logging.LogRecord) -> str:
        second = int(record.created)
        if second != self._second:
            self._second_text = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
            self._second = second
        return f"{self._second_text}.{int(record.msecs):03d}Z"

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "ts": self._timestamp(record),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        entry.update({k: v for k, v in vars(record).items() if k not in _STANDARD})
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return _encode(entry)


class _JsonLineHandler(logging.StreamHandler):
    def handleError(self, record: logging.LogRecord) -> None:  # noqa: N802 (logging's name)
        # logging's default prints a traceback to sys.stderr, which may be the pipe whose lines
        # come back here as records (device.native_output): a loop. A log that cannot be
        # written (journald gone) has nowhere to say so.
        return


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
