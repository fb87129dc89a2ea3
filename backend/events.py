"""Reporting progress, logs and the final result: JSON lines (--events) or human stderr."""

from __future__ import annotations

import signal
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
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
        self._last_event: dict[str, float] = {}

    def _emit(self, event_kind: str, /, **fields: Any) -> None:
        self._out.write(protocol.event_line(event_kind, **fields) + "\n")
        self._out.flush()

    def progress(self, stage: str, done: int, total: int) -> None:
        """Report `done` of `total` units of `stage`; the ETA is extrapolated from the stage's rate."""
        now = time.monotonic()
        # Rate since the stage's first report, so a resumed stage (done starting high) is right.
        start, first_done = self._stage_start.setdefault(stage, (now, done))
        progressed = done - first_done
        eta = (now - start) / progressed * (total - done) if progressed > 0 else None
        if self.json_lines:
            # At most ~10 events a second per stage (and always the last): cheap to parse.
            if done != total and now - self._last_event.get(stage, float("-inf")) < 0.1:
                return
            self._last_event[stage] = now
            self._emit(protocol.EVENT_PROGRESS, stage=stage, done=done, total=total,
                       eta_s=None if eta is None else round(eta, 2))
            return
        if done == total or now - self._last_human > 0.5:
            self._last_human = now
            eta_text = "" if eta is None else f", ETA {eta:.0f} s"
            end = "\n" if done == total else "\r"
            self._err.write(f"{stage}: {done}/{total}{eta_text}    {end}")
            self._err.flush()

    def log(self, message: str) -> None:
        if self.json_lines:
            self._emit(protocol.EVENT_LOG, message=message)
        else:
            self._err.write(message + "\n")

    def warning(self, message: str) -> None:
        if self.json_lines:
            self._emit(protocol.EVENT_WARNING, message=message)
        else:
            self._err.write("warning: " + message + "\n")

    def error(self, kind: str, message: str) -> None:
        if self.json_lines:
            self._emit(protocol.EVENT_ERROR, kind=kind, message=message)
        else:
            self._err.write(f"error ({kind}): {message}\n")

    def result(self, path: str) -> None:
        if self.json_lines:
            self._emit(protocol.EVENT_RESULT, path=path)
        else:
            self._out.write(path + "\n")


@contextmanager
def cancellable() -> Iterator[None]:
    """Turn SIGTERM (Blender's Esc, a farm's kill) into `Cancelled` so temp output is removed."""

    def on_signal(signum: int, _frame: object) -> None:
        raise Cancelled(f"cancelled by signal {signal.Signals(signum).name}")

    previous = signal.signal(signal.SIGTERM, on_signal)
    try:
        yield
    except KeyboardInterrupt:
        raise Cancelled("cancelled by keyboard interrupt") from None
    finally:
        signal.signal(signal.SIGTERM, previous)
