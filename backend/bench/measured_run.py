"""A benchmark's child process, measured alone: wall time and its own peak resident set size
(os.wait4), so runs in one benchmark do not share a peak."""

from __future__ import annotations

import os
import subprocess
import tempfile
import time
from collections.abc import Mapping

from ..data_location import REPO_ROOT
from ..events import EventSink
from ..formats.errors import BackendError


def run_measured(command: list[str], sink: EventSink, what: str,
                 env: Mapping[str, str] | None = None) -> tuple[float, float, str]:
    """(wall seconds, peak RSS MiB, stderr tail) of `command` run from the repository root
    (environment `env`, default this one's); BackendError naming `what` on failure."""
    start = time.perf_counter()
    with tempfile.TemporaryFile() as stderr:
        process = subprocess.Popen(command, cwd=REPO_ROOT, stdout=subprocess.DEVNULL, stderr=stderr,
                                   env=None if env is None else dict(env))
        _, status, usage = os.wait4(process.pid, 0)
        process.returncode = os.waitstatus_to_exitcode(status)
        stderr.seek(0)
        tail = stderr.read().decode(errors="replace")[-2000:]
    wall = time.perf_counter() - start
    if process.returncode != 0:
        raise BackendError(f"{what} failed (exit {process.returncode}): {tail}")
    sink.log(f"{what}: {wall:.1f} s, peak {usage.ru_maxrss / 1024:.0f} MiB")
    return wall, usage.ru_maxrss / 1024, tail
