"""Lines that native libraries print (LiteRT, OpenCV, libcamera) become log records.

LiteRT writes "INFO: Created TensorFlow Lite XNNPACK delegate for CPU." straight to file
descriptor 2 from C++, and libcamera logs there too: neither goes through Python, so neither
can be formatted or filtered. `native_output_as_logs` points the file descriptors at pipes; a
thread reads each line and logs it (logger "native", level guessed from the line), and the
process's real stderr is handed back for the log handler and for one-line failures.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import sys
import threading
from collections.abc import Iterator
from typing import TextIO

log = logging.getLogger("native")

# "INFO: Created TensorFlow Lite…" (LiteRT), "[ERROR:0@0.090] …" / "[ WARN:0@1.2] …" (OpenCV),
# "[0:01:02.345] [123]  INFO Camera …" (libcamera), "W0000 00:00:… file.cc:12] …" (absl).
_LEVELS = (
    (re.compile(r"\b(FATAL|CRITICAL)\b|^F\d{4} "), logging.CRITICAL),
    (re.compile(r"\bERROR\b|^E\d{4} "), logging.ERROR),
    (re.compile(r"\bWARN(ING)?\b|^W\d{4} "), logging.WARNING),
    (re.compile(r"\b(INFO|DEBUG)\b|^I\d{4} "), logging.INFO),
)
_LITERT_PREFIX = re.compile(r"^(INFO|WARNING|ERROR): ")


def quiet_opencv_logging() -> None:
    """Turn OpenCV's own logging off unless OPENCV_LOG_LEVEL says otherwise; before cv2 is
    imported, which reads it once. Its lines ("[ WARN:0@0.03] global cap_v4l.cpp:913 open
    VIDEOIO(V4L2:/dev/video7): can't open camera by index" for every probe of a missing camera,
    one for a damaged picture) repeat what the caller already says, in a format of their own."""
    os.environ.setdefault("OPENCV_LOG_LEVEL", "SILENT")


def level_of(line: str) -> int:
    """The log level a native line announces; a line that names none is a warning."""
    head = line[:80]
    for pattern, level in _LEVELS:
        if pattern.search(head):
            return level
    return logging.WARNING


def _pump(read_fd: int, stream: str) -> None:
    with os.fdopen(read_fd, "rb") as pipe:
        for raw in pipe:
            line = raw.decode("utf-8", errors="replace").rstrip()
            if line:
                log.log(level_of(line), _LITERT_PREFIX.sub("", line), extra={"stream": stream})


@contextlib.contextmanager
def native_output_as_logs(fds: tuple[int, ...] = (2,)) -> Iterator[TextIO]:
    """While inside, what is written to these file descriptors (1, 2) is logged line by line.

    Yields a text stream on the original stderr: give it to the log handler (a handler writing
    to descriptor 2 would feed its own lines back into the pipe). Python's `sys.stdout` and
    `sys.stderr` keep writing to descriptors 1 and 2, so stray Python writes are logged too.
    """
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    saved = {fd: os.dup(fd) for fd in fds}
    real_stderr = os.fdopen(
        os.dup(saved.get(2, 2)), "w", buffering=1, encoding="utf-8", errors="backslashreplace"
    )
    pumps = []
    for fd in fds:
        read_fd, write_fd = os.pipe()
        os.dup2(write_fd, fd)
        os.close(write_fd)
        name = "stdout" if fd == 1 else "stderr"
        pump = threading.Thread(
            target=_pump, args=(read_fd, name), name=f"native-{name}", daemon=True
        )
        pump.start()
        pumps.append(pump)
    try:
        yield real_stderr
    finally:
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):
                stream.flush()
        for fd, original in saved.items():
            os.dup2(original, fd)  # the pipe's last writer is gone: its pump reads to the end
            os.close(original)
        for pump in pumps:
            pump.join(timeout=2.0)
        real_stderr.close()
