"""A run's files go into its output folder together, once all of them are written.

A model and the reports about it (metrics.json's split and accuracy, the plots) are read as a
pair: `python -m convert` calibrates a model on the validation digits its metrics.json names.
Written one by one in place, a run stopped half way (Ctrl-C, a crash) left a new model beside
the previous run's reports. Free of TensorFlow, so that every trainer can use it.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

STAGING_PREFIX = ".partial-"


@contextlib.contextmanager
def published_together(out: Path) -> Iterator[Path]:
    """Yield a hidden folder inside ``out`` to write a run's files in, under their own names.

    When the block ends normally each file is renamed into ``out`` (in the same folder, so each
    rename is atomic), one right after the other with Ctrl-C held off until the last: ``out``
    then holds this run's files. When it ends by an exception or Ctrl-C, the staging folder is
    removed and ``out`` is left as it was (a folder made for this run is removed again).
    """
    created = missing_folders(out)
    staging: Path | None = None
    published = False
    try:
        out.mkdir(parents=True, exist_ok=True)
        _remove_abandoned(out)
        # Named after this process, so that a later run can tell a staging folder it may remove.
        staging = Path(tempfile.mkdtemp(prefix=f"{STAGING_PREFIX}{os.getpid()}-", dir=out))
        yield staging
        with _interrupts_held():
            for path in sorted(staging.iterdir()):
                path.replace(out / path.name)
            published = True
    finally:
        if staging is not None:
            shutil.rmtree(staging, ignore_errors=True)
        if not published:
            remove_while_empty(created)


def missing_folders(path: Path) -> list[Path]:
    """``path`` and those of its parents that do not exist yet, deepest first."""
    return [folder for folder in (path, *path.parents) if not folder.exists()]


def remove_while_empty(folders: list[Path]) -> None:
    """Remove folders a command made, deepest first, each only while empty."""
    for folder in folders:
        with contextlib.suppress(OSError):
            folder.rmdir()


def _remove_abandoned(out: Path) -> None:
    """Remove the staging folders in ``out`` of runs that ended without cleaning up (killed,
    a power cut), each holding a copy of a model; not those of a run still going, which may
    write into the same folder."""
    for folder in out.glob(f"{STAGING_PREFIX}*-*"):
        pid = folder.name.removeprefix(STAGING_PREFIX).split("-", 1)[0]
        if folder.is_dir() and pid.isdigit() and not _alive(int(pid)):
            shutil.rmtree(folder, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError):  # another user's process; not a pid at all
        return pid > 0
    return True


@contextlib.contextmanager
def _interrupts_held() -> Iterator[None]:
    """Deliver a Ctrl-C that arrives inside the block only once the block is done: an interrupt
    between two renames would leave half of a run's files in place."""
    # Only the main thread may set handlers, and one not set from Python cannot be put back.
    if (threading.current_thread() is not threading.main_thread()
            or signal.getsignal(signal.SIGINT) is None):
        yield
        return
    caught: list[int] = []
    previous = signal.signal(signal.SIGINT, lambda signum, _frame: caught.append(signum))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
    if caught:
        signal.raise_signal(signal.SIGINT)  # to the handler that was there (KeyboardInterrupt)
