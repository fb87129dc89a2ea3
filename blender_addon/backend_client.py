"""Running the backend as a subprocess and reading its events (plain Python, no bpy).

The add-on's modal operators poll a `BackendRun` from a timer; the blocking path
(`EXEC_DEFAULT`, background mode, tests) calls `wait`. Cancelling terminates the process:
the backend traps SIGTERM, removes its temp output and exits with the `cancelled` code.
"""

from __future__ import annotations

import os
import queue
import subprocess
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from ..backend.formats import protocol

# The folder holding `backend/` (the extension folder, or the repository in development).
EXTENSION_ROOT = Path(__file__).resolve().parent.parent


class BackendFailure(Exception):
    """The backend ended without a result: `kind` is a protocol error kind."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message


@dataclass
class Progress:
    stage: str = ""
    done: int = 0
    total: int = 0
    eta_s: float | None = None

    def describe(self) -> str:
        if not self.stage:
            return "starting backend"
        eta = "" if self.eta_s is None else f", ETA {self.eta_s:.0f} s"
        return f"{self.stage} {self.done}/{self.total}{eta}"

    @property
    def fraction(self) -> float:
        return self.done / self.total if self.total else 0.0


@dataclass
class BackendRun:
    """One `python -m backend ...` process with `--events`."""

    process: subprocess.Popen
    command: list[str]
    events: queue.Queue = field(default_factory=queue.Queue)
    progress: Progress = field(default_factory=Progress)
    warnings: list[str] = field(default_factory=list)
    stderr_tail: list[str] = field(default_factory=list)
    result: str | None = None
    error: dict | None = None
    readers: list[threading.Thread] = field(default_factory=list)

    def poll(self) -> bool:
        """Consume pending events; True once the process has ended and all events are read."""
        while True:
            try:
                event = self.events.get_nowait()
            except queue.Empty:
                break
            self._apply(event)
        return self.process.poll() is not None and not any(t.is_alive() for t in self.readers)

    def _apply(self, event: dict) -> None:
        kind = event["event"]
        if kind == protocol.EVENT_PROGRESS:
            self.progress = Progress(event.get("stage", ""), int(event.get("done", 0)),
                                     int(event.get("total", 0)), event.get("eta_s"))
        elif kind == protocol.EVENT_WARNING:
            self.warnings.append(str(event.get("message", "")))
        elif kind == protocol.EVENT_ERROR:
            self.error = event
        elif kind == protocol.EVENT_RESULT:
            self.result = str(event["path"])

    def cancel(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()

    def outcome(self) -> str:
        """The result path, or BackendFailure describing why there is none."""
        code = self.process.wait()
        if code == 0 and self.result is not None:
            return self.result
        if self.error is not None:
            raise BackendFailure(str(self.error.get("kind", protocol.ERROR_INTERNAL)),
                                 str(self.error.get("message", "")))
        tail = "\n".join(self.stderr_tail[-15:])
        raise BackendFailure(protocol.ERROR_INTERNAL,
                             f"the backend exited with code {code} without a result:\n{tail}")

    def wait(self, on_progress: Callable[[Progress], None] | None = None,
             should_cancel: Callable[[], bool] | None = None, interval: float = 0.1) -> str:
        """Block until the process ends; returns the result path or raises BackendFailure."""
        while not self.poll():
            if should_cancel is not None and should_cancel():
                self.cancel()
            if on_progress is not None:
                on_progress(self.progress)
            time.sleep(interval)
        return self.outcome()


def start_backend(python: str | Path, args: Sequence[str]) -> BackendRun:
    """Start `<python> -m backend ARGS --events` with the extension folder on PYTHONPATH.

    Raises BackendFailure(bad_input) when the interpreter cannot be started.
    """
    command = [str(python), "-m", "backend", *args, "--events"]
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(EXTENSION_ROOT), env.get("PYTHONPATH")]))
    try:
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                   text=True, env=env, cwd=str(EXTENSION_ROOT))
    except OSError as exc:
        raise BackendFailure(protocol.ERROR_BAD_INPUT,
                             f"cannot start the backend interpreter {python}: {exc}. Set it in "
                             "FaceAdapt's preferences or run Install Backend.") from exc
    run = BackendRun(process=process, command=command)
    run.readers = [threading.Thread(target=_read_events, args=(process.stdout, run.events), daemon=True),
                   threading.Thread(target=_read_tail, args=(process.stderr, run.stderr_tail),
                                    daemon=True)]
    for thread in run.readers:
        thread.start()
    return run


def _read_events(stream: IO[str], events: queue.Queue) -> None:
    for line in stream:
        event = protocol.parse_event_line(line)
        if event is not None:
            events.put(event)


def _read_tail(stream: IO[str], tail: list[str]) -> None:
    for line in stream:
        tail.append(line.rstrip())
        del tail[:-50]
