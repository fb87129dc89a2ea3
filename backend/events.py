"""Reporting progress, logs and the final result: JSON lines (--events) or human stderr."""

from __future__ import annotations

import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Any, TextIO

from .formats import protocol
from .formats.errors import Cancelled


class EventSink:
    """Writes protocol events; with `json_lines` False, writes human-readable progress to stderr."""

    def __init__(self, json_lines: bool, out: TextIO | None = None, err: TextIO | None = None):
        self.json_lines = json_lines
        self._out = out or sys.stdout
        self._err = err or sys.stderr
        self._stage_start: dict[str, tuple[float, int]] = {}
        self._last_human: float = 0.0
        self._line_open = False  # a human progress line ended in "\r": a message starts below it
        self._last_event: dict[str, float] = {}

    def _emit(self, event_kind: str, /, **fields: Any) -> None:
        self._out.write(protocol.event_line(event_kind, **fields) + "\n")
        self._out.flush()

    def progress(self, stage: str, done: int, total: int, values: dict[str, float] | None = None) -> None:
        """Report `done` of `total` units of `stage`; the ETA is extrapolated from the stage's rate.
        `values`: the stage's current figures (an optimisation's loss terms), shown beside it."""
        now = time.monotonic()
        # Rate since the stage's first report, so a resumed stage (done starting high) is right.
        start, first_done = self._stage_start.setdefault(stage, (now, done))
        progressed = done - first_done
        eta = (now - start) / progressed * (total - done) if progressed > 0 else None
        if done >= total:  # a later run of the same stage (another clip, tracker) starts afresh
            del self._stage_start[stage]
        if self.json_lines:
            # At most ~10 events a second per stage (and always the last): cheap to parse.
            if done != total and now - self._last_event.get(stage, float("-inf")) < 0.1:
                return
            self._last_event[stage] = now
            self._emit(protocol.EVENT_PROGRESS, stage=stage, done=done, total=total,
                       eta_s=None if eta is None else round(eta, 2), **({"values": values} if values else {}))
            return
        if done == total or now - self._last_human > 0.5:
            self._last_human = now
            eta_text = "" if eta is None else f", ETA {eta:.0f} s"
            figures = "".join(f" {k} {v:.4g}" for k, v in (values or {}).items())
            end = "\n" if done == total else "\r"
            self._err.write(f"{stage}: {done}/{total}{eta_text}{figures}    {end}")
            self._line_open = end == "\r"
            self._err.flush()

    def _human_line(self, text: str) -> None:
        self._err.write(("\n" if self._line_open else "") + text + "\n")
        self._line_open = False

    def log(self, message: str) -> None:
        if self.json_lines:
            self._emit(protocol.EVENT_LOG, message=message)
        else:
            self._human_line(message)

    def warning(self, message: str) -> None:
        if self.json_lines:
            self._emit(protocol.EVENT_WARNING, message=message)
        else:
            self._human_line("warning: " + message)

    def error(self, kind: str, message: str) -> None:
        if self.json_lines:
            self._emit(protocol.EVENT_ERROR, kind=kind, message=message)
        else:
            self._human_line(f"error ({kind}): {message}")

    def result(self, path: str) -> None:
        if self.json_lines:
            self._emit(protocol.EVENT_RESULT, path=path)
        else:
            self._out.write(path + "\n")


# The signals that cancel a run: Blender's Esc and a farm's kill (SIGTERM), a closed terminal or
# session (SIGHUP, absent on Windows). SIGINT arrives as KeyboardInterrupt.
CANCEL_SIGNALS: tuple[signal.Signals, ...] = tuple(
    getattr(signal, name) for name in ("SIGTERM", "SIGHUP") if hasattr(signal, name))

_stopping = False  # set by the first cancel (or the end of the run): later signals are ignored


_RETRY_S = 0.05  # how soon a cancel that arrived inside an import is delivered again


def _importing(frame: FrameType | None) -> bool:
    """Whether `frame` runs inside an import statement (its module being initialised)."""
    while frame is not None:
        if frame.f_code.co_filename.startswith("<frozen importlib._bootstrap"):
            return True
        frame = frame.f_back
    return False


def _on_cancel_signal(signum: int, frame: FrameType | None) -> None:
    """Raise Cancelled once, so temp output is removed; a second signal (Esc pressed twice)
    during that cleanup is ignored rather than killing the process with the cleanup half done.

    Not inside an import: the exception would leave a half-initialised module that a
    library's `except Exception` around the import swallows (seen: numpy without `matrix`,
    then an internal error instead of the cancel). There the signal is delivered again
    shortly, until the import is done."""
    global _stopping
    if _stopping:
        return
    if _importing(frame):
        retry = threading.Timer(_RETRY_S, signal.raise_signal, (signum,))
        retry.daemon = True  # never holds up the exit
        retry.start()
        return
    _stopping = True
    raise Cancelled(f"cancelled by signal {signal.Signals(signum).name}")


def cancel_on_signals() -> None:
    """Turn CANCEL_SIGNALS into `Cancelled` from now on. `python -m backend` calls this before
    importing anything heavy (torch takes seconds), so an early cancel is reported too."""
    global _stopping
    _stopping = False
    for signum in CANCEL_SIGNALS:
        signal.signal(signum, _on_cancel_signal)


def ignore_signals_until_exit() -> None:
    """The run is over (its result or error reported): a cancel now changes nothing. Ignored
    at the OS level, not by our handler: interpreter shutdown (seconds with torch loaded) puts
    Python handlers back to the default, under which a late SIGTERM kills the process with
    -15 after it reported its status; an ignored signal stays ignored."""
    global _stopping
    _stopping = True
    for signum in CANCEL_SIGNALS:
        signal.signal(signum, signal.SIG_IGN)


def run_to_exit_status(entry: Callable[[], int], events: bool) -> int:
    """`entry()`'s exit status, or the cancelled status with an error event (JSON line when
    `events`) when a cancel arrives outside the command's own handling (while importing)."""
    try:
        try:
            status = entry()
        except KeyboardInterrupt:
            raise Cancelled("cancelled by keyboard interrupt") from None
    except Cancelled as exc:
        ignore_signals_until_exit()
        EventSink(json_lines=events).error(exc.kind, exc.message)
        return exc.exit_code
    ignore_signals_until_exit()
    return status


@contextmanager
def cancellable() -> Iterator[None]:
    """Turn CANCEL_SIGNALS and Ctrl-C into `Cancelled` so temp output is removed; the handlers
    found on entry (`python -m backend`'s own, installed first) are put back on exit."""
    previous = {signum: signal.getsignal(signum) for signum in CANCEL_SIGNALS}
    cancel_on_signals()
    try:
        yield
    except KeyboardInterrupt:
        raise Cancelled("cancelled by keyboard interrupt") from None
    finally:
        for signum, handler in previous.items():
            if handler is not None:
                signal.signal(signum, handler)
