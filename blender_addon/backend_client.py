"""Running the backend as a subprocess and reading its events (plain Python, no bpy).

The add-on's modal operators poll a `BackendRun` from a timer; the blocking path
(`EXEC_DEFAULT`, background mode, tests) calls `wait`. Whatever the backend does, the client
must not hang Blender or raise out of `poll`:
- both pipes are read as bytes by their own thread while the process runs (a full stderr pipe
  would block the backend), decoded with undecodable bytes replaced;
- a stdout line that is not an event is ignored; an event with missing or wrongly typed fields
  is ignored and reported as a warning;
- Cancel stops the backend's whole process group (`process_group`): SIGTERM once (the backend
  traps it, removes its temp output and exits 130), SIGKILL after a grace period;
- a backend that reports nothing (no event, no output on either pipe) for `silence_limit_s` is
  stopped the same way and the run fails saying so. This watches for silence, not total time:
  a long track that keeps reporting progress runs as long as it needs.
"""

from __future__ import annotations

import json
import math
import os
import queue
import subprocess
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from ..backend.formats import protocol
from . import process_group

# The folder holding `backend/` (the extension folder, or the repository in development).
EXTENSION_ROOT = Path(__file__).resolve().parent.parent
# The longest the backend may go without any event or output line before it is taken for stuck.
# Its slowest silent steps (first import of torch, a kernel build, loading a model) take a few
# minutes at most; a track reports progress every frame.
SILENCE_LIMIT_S = 15 * 60.0
STDERR_TAIL_LINES = 50


class BackendFailure(Exception):
    """The backend ended without a result: `kind` is a protocol error kind."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message


class MalformedEvent(ValueError):
    """An event line whose fields are missing or of the wrong type."""


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
        return min(self.done / self.total, 1.0) if self.total else 0.0


@dataclass
class BackendRun:
    """One `python -m backend ...` process with `--events`, started as its own process group."""

    process: subprocess.Popen
    command: list[str]
    silence_limit_s: float | None = SILENCE_LIMIT_S
    stop_grace_s: float = process_group.STOP_GRACE_S
    events: queue.Queue = field(default_factory=queue.Queue)
    progress: Progress = field(default_factory=Progress)
    warnings: list[str] = field(default_factory=list)
    # The last STDERR_TAIL_LINES lines of stderr (a list: slicing it while the reader appends
    # is safe, iterating a deque is not).
    stderr_tail: list[str] = field(default_factory=list)
    result: str | None = None
    error: dict | None = None
    readers: list[threading.Thread] = field(default_factory=list)
    # time.monotonic() of the last line on either pipe (written by the reader threads).
    last_output_at: float = field(default_factory=time.monotonic)
    # Set when the watchdog stopped the run: how long the backend had been silent.
    stalled_after_s: float | None = None
    _stop_requested: bool = False
    _exited_at: float | None = None

    @property
    def stopping(self) -> bool:
        """Whether the run has been asked to stop (Cancel or the watchdog)."""
        return self._stop_requested

    def poll(self) -> bool:
        """Consume pending events; True once the process has ended and all events are read.

        Never raises for anything the backend writes. Runs the watchdog on silence.
        """
        self._apply_pending()
        if self.process.poll() is None:
            silent_s = time.monotonic() - self.last_output_at
            if (self.silence_limit_s is not None and not self._stop_requested
                    and silent_s > self.silence_limit_s):
                self.stalled_after_s = silent_s
                self.cancel()
            return False
        if self._exited_at is None:
            self._exited_at = time.monotonic()
            # Whatever the backend left running in its group would hold the pipes open.
            process_group.signal_group(self.process, force=True)
        if any(thread.is_alive() for thread in self.readers):
            if time.monotonic() - self._exited_at < self.stop_grace_s:
                return False
            # A process that left the backend's group still holds a pipe: what the backend
            # wrote before it exited has been read; stop waiting for the pipe to close.
            self.warnings.append("a process started by the backend still holds its output "
                                 "open; it was left running")
            self.readers = []  # their threads end with that process; nothing more is awaited
        self._apply_pending()
        return True

    def cancel(self) -> None:
        """Ask the backend's process group to stop: SIGTERM once, SIGKILL after the grace period.

        Calling it again (Esc pressed twice, `should_cancel` polled) sends nothing more.
        """
        if self._stop_requested or self.process.poll() is not None:
            return
        self._stop_requested = True
        process_group.signal_group(self.process, force=False)
        threading.Thread(target=_kill_after_grace, args=(self.process, self.stop_grace_s),
                         daemon=True).start()

    def outcome(self) -> str:
        """The result path, or BackendFailure describing why there is none."""
        code = self.process.wait()
        if self.stalled_after_s is not None:
            raise BackendFailure(protocol.ERROR_INTERNAL, self._stall_message())
        if code == 0 and self.result is not None:
            return self.result
        if self.error is not None:
            raise BackendFailure(str(self.error.get("kind", protocol.ERROR_INTERNAL)),
                                 str(self.error.get("message", "")))
        raise BackendFailure(protocol.ERROR_INTERNAL,
                             f"the backend exited with code {code} without a result:\n"
                             f"{self._tail_text()}")

    def wait(self, on_progress: Callable[[Progress], None] | None = None,
             should_cancel: Callable[[], bool] | None = None, interval: float = 0.1) -> str:
        """Block until the process ends; returns the result path or raises BackendFailure.

        Interrupted (Ctrl+C in a terminal, which no longer reaches the backend's own process
        group), it stops the backend before passing the interruption on.
        """
        try:
            while not self.poll():
                if should_cancel is not None and not self.stopping and should_cancel():
                    self.cancel()
                if on_progress is not None:
                    on_progress(self.progress)
                time.sleep(interval)
        except BaseException:
            self.cancel()
            raise
        return self.outcome()

    # -- internals --

    def _apply_pending(self) -> None:
        while True:
            try:
                event = self.events.get_nowait()
            except queue.Empty:
                return
            try:
                self._apply(event)
            except MalformedEvent as exc:
                shown = json.dumps(event)
                shown = shown if len(shown) <= 200 else shown[:200] + "..."
                self.warnings.append(f"ignored a malformed backend event ({exc}): {shown}")

    def _apply(self, event: dict[str, Any]) -> None:
        kind = event["event"]
        if kind == protocol.EVENT_PROGRESS:
            self.progress = Progress(_text(event, "stage", ""), _count(event, "done"),
                                     _count(event, "total"), _seconds(event, "eta_s"))
        elif kind == protocol.EVENT_WARNING:
            self.warnings.append(_text(event, "message", ""))
        elif kind == protocol.EVENT_ERROR:
            self.error = {"kind": _text(event, "kind", protocol.ERROR_INTERNAL),
                          "message": _text(event, "message", "")}
        elif kind == protocol.EVENT_RESULT:
            path = _text(event, "path", "")
            if not path:
                raise MalformedEvent("a result without a 'path'")
            self.result = path

    def _tail_text(self) -> str:
        return "\n".join(self.stderr_tail[-15:])

    def _stall_message(self) -> str:
        assert self.stalled_after_s is not None
        return (f"the backend reported nothing (no progress, no output) for "
                f"{self.stalled_after_s:.0f} s during '{self.progress.describe()}', so it was "
                f"taken for stuck and stopped. Run it again; if it stops at the same place, "
                f"the backend's log and these last lines of its output say where:\n"
                f"{self._tail_text()}")


def start_backend(python: str | Path, args: Sequence[str],
                  silence_limit_s: float | None = SILENCE_LIMIT_S) -> BackendRun:
    """Start `<python> -m backend ARGS --events` with the extension folder on PYTHONPATH.

    `silence_limit_s`: stop the run when the backend reports nothing for this long (None:
    never). Raises BackendFailure(bad_input) when the interpreter cannot be started.
    """
    command = [str(python), "-m", "backend", *args, "--events"]
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(EXTENSION_ROOT), env.get("PYTHONPATH")]))
    try:
        process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                   stderr=subprocess.PIPE, env=env, cwd=str(EXTENSION_ROOT),
                                   **process_group.new_group_arguments())
    except OSError as exc:
        raise BackendFailure(protocol.ERROR_BAD_INPUT,
                             f"cannot start the backend interpreter {python}: {exc}. Set it in "
                             "FaceAdapt's preferences or run Install Backend.") from exc
    run = BackendRun(process=process, command=command, silence_limit_s=silence_limit_s)
    run.readers = [threading.Thread(target=_read_events, args=(process.stdout, run), daemon=True),
                   threading.Thread(target=_read_tail, args=(process.stderr, run), daemon=True)]
    for thread in run.readers:
        thread.start()
    return run


def _read_events(stream: IO[bytes], run: BackendRun) -> None:
    """Every stdout line as it comes (any bytes); the events among them go to `run.events`."""
    for raw in stream:
        run.last_output_at = time.monotonic()
        event = protocol.parse_event_line(raw.decode("utf-8", errors="replace"))
        if event is not None:
            run.events.put(event)


def _read_tail(stream: IO[bytes], run: BackendRun) -> None:
    """Every stderr line as it comes (any bytes), the last ones kept for error messages."""
    for raw in stream:
        run.last_output_at = time.monotonic()
        run.stderr_tail.append(raw.decode("utf-8", errors="replace").rstrip())
        del run.stderr_tail[:-STDERR_TAIL_LINES]


def _kill_after_grace(process: subprocess.Popen, grace_s: float) -> None:
    try:
        process.wait(timeout=grace_s)
    except subprocess.TimeoutExpired:
        process_group.signal_group(process, force=True)


def _text(event: dict[str, Any], name: str, default: str) -> str:
    value = event.get(name, default)
    if not isinstance(value, str):
        raise MalformedEvent(f"'{name}' is {type(value).__name__}, not text")
    return value


def _count(event: dict[str, Any], name: str) -> int:
    value = event.get(name, 0)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
            or value < 0:
        raise MalformedEvent(f"'{name}' is {value!r}, not a count")
    return int(value)


def _seconds(event: dict[str, Any], name: str) -> float | None:
    value = event.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise MalformedEvent(f"'{name}' is {value!r}, not seconds")
    return float(value)
