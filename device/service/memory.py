"""Give memory back: decoded uploads are big, short-lived buffers that glibc would otherwise keep.

By default glibc raises its mmap threshold after the first big buffer is freed (up to 32 MiB), so
later frames come from per-thread heaps that are rarely returned to the OS: after a burst of
photo uploads the service stayed ~75 MB larger for good (measured with bench/, 1080p JPEGs at 32
connections). A fixed threshold makes every buffer of 128 KiB or more its own mapping, released
on free; two arenas are plenty for the two worker threads that do CPU work.
"""

from __future__ import annotations

import ctypes
import logging

log = logging.getLogger(__name__)

M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
M_ARENA_MAX = -8
BIG_BUFFER_BYTES = 128 * 1024
ARENAS = 2


def return_big_buffers_to_os() -> bool:
    """Tune glibc's malloc (call before threads start); False where there is no glibc."""
    try:
        # The interpreter's own symbols include libc's; ctypes.util would cost a subprocess import.
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):  # musl, macOS: their allocators behave differently
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    ok = all(
        mallopt(param, value)
        for param, value in (
            (M_MMAP_THRESHOLD, BIG_BUFFER_BYTES),
            (M_TRIM_THRESHOLD, 2 * BIG_BUFFER_BYTES),
            (M_ARENA_MAX, ARENAS),
        )
    )
    log.debug("malloc tuned for short-lived big buffers: %s", ok)
    return ok
