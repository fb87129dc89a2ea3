"""What libraries print goes to a log file, not to the user's terminal or Blender's status.

TensorFlow Lite (inside MediaPipe), absl and Warp write banners and warnings straight to the
process's file descriptors 1 and 2 from native code, and Python libraries emit warnings;
none of it is the backend's own output. While a command runs, descriptors 1 and 2 point at
the log file, and `sys.stdout` / `sys.stderr` (the backend's events, human progress and
reports) write to the original stdout and stderr. Error messages name the log file. A cache
folder that cannot be written (read-only on farm containers) must not fail the run: the log is
then a temp file of the run's own.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TextIO

from .cache import writable_cache_subdir

MAX_LOG_BYTES = 4 * 2**20  # the log is started afresh (the old one kept as .1) beyond this


def library_log_path() -> Path:
    """The log file: <cache>/logs/backend.log (FACEADAPT_CACHE moves it), or a new temp file
    when the cache cannot be written."""
    logs = writable_cache_subdir("logs")
    if logs is not None:
        return logs / "backend.log"
    fd, fallback = tempfile.mkstemp(prefix="faceadapt-backend-", suffix=".log")
    os.close(fd)
    return Path(fallback)


def _rotate(path: Path) -> None:
    if path.is_file() and path.stat().st_size > MAX_LOG_BYTES:
        os.replace(path, path.with_name(path.name + ".1"))


@contextmanager
def library_output_to_log(path: Path, command_line: list[str]) -> Iterator[Path]:
    """Within the block, native and library output goes to `path` (appended, one header per
    run) and sys.stdout / sys.stderr keep writing to the original streams."""
    path.parent.mkdir(parents=True, exist_ok=True)
    _rotate(path)
    sys.stdout.flush()
    sys.stderr.flush()
    saved = {fd: os.dup(fd) for fd in (1, 2)}
    with open(path, "ab", buffering=0) as log:
        stamp = time.strftime("%Y-%m-%d %H:%M:%S")
        log.write(f"=== {stamp} pid {os.getpid()}: python -m backend {' '.join(command_line)}\n".encode())
        for fd in (1, 2):
            os.dup2(log.fileno(), fd)
    streams = sys.stdout, sys.stderr
    sys.stdout = _text_stream(saved[1], streams[0])
    sys.stderr = _text_stream(saved[2], streams[1])
    show_warning = warnings.showwarning
    log_stream = open(path, "a", encoding="utf-8", errors="replace")

    def warning_to_log(message, category, filename, lineno, file=None, line=None):  # type: ignore[no-untyped-def]
        log_stream.write(warnings.formatwarning(message, category, filename, lineno, line))
        log_stream.flush()

    warnings.showwarning = warning_to_log
    try:
        yield path
    finally:
        warnings.showwarning = show_warning
        log_stream.close()
        for stream in (sys.stdout, sys.stderr):
            stream.flush()
        sys.stdout, sys.stderr = streams
        for fd, copy in saved.items():
            os.dup2(copy, fd)
            os.close(copy)


def _text_stream(fd: int, like: TextIO) -> TextIO:
    """A line-buffered text stream on `fd` (a copy of the original 1 or 2), which stays open
    until the block restores it."""
    return open(fd, "w", buffering=1, encoding=getattr(like, "encoding", None) or "utf-8",
                errors="replace", closefd=False)
