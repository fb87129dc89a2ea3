"""One attempt at one shot, in the process it runs in (the batch's own, or a Ray worker): `track`
with the shot's settings, its events handed to the batch, its end as a `ShotOutcome`."""

from __future__ import annotations

import json
import os
import socket
import threading
import time
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass, field, replace
from typing import Any

from ..device import resolve_device
from ..events import EventSink, cancellable
from ..formats import protocol
from ..formats.errors import BackendError, Cancelled
from ..formats.results_dir import RESULT_JSON
from .shot_file import Shot

# Failures of the input itself: another attempt would fail the same way.
NOT_RETRIED = (protocol.ERROR_BAD_INPUT, protocol.ERROR_NO_FACE)
STARTED, PROGRESS, LOG, WARNING = "started", "progress", "log", "warning"


@dataclass(frozen=True)
class ShotEvent:
    """Something a running shot reports: `kind` STARTED (fields: pid, host, device), PROGRESS
    (stage, done, total, values), LOG or WARNING (message)."""

    shot: str
    attempt: int  # 1 for the first
    kind: str
    fields: dict[str, Any]


@dataclass
class ShotOutcome:
    """How a shot ended. status: "done", "failed", "cancelled", or "skipped" (finished by an
    earlier run with the same settings). For a failure, `error_kind` (protocol.ERROR_*) and
    `error`; `attempt_errors` holds each failed attempt's message, the last included."""

    name: str
    status: str
    attempts: int = 0
    started_at: float | None = None  # Unix time the last attempt started
    wall_s: float = 0.0
    error_kind: str | None = None
    error: str | None = None
    attempt_errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    result: dict[str, Any] = field(default_factory=dict)  # result.json's metrics, warnings, timings_s
    host: str | None = None
    pid: int | None = None

    def retryable(self, retries: int) -> bool:
        """Whether another attempt is due: a failure not of the input, and attempts left."""
        return (self.status == "failed" and self.error_kind not in NOT_RETRIED
                and self.attempts <= retries)

    def failed_attempt(self, kind: str, message: str) -> None:
        self.status, self.error_kind, self.error = "failed", kind, message
        self.attempt_errors.append(f"attempt {self.attempts}: {message}")


class ShotSink(EventSink):
    """The EventSink `track` writes to inside a shot: every event becomes a ShotEvent handed to
    `emit`. Progress is passed on at most every `interval_s` per stage (and always its end), so
    a remote shot's events stay cheap."""

    def __init__(self, shot: str, attempt: int, emit: Callable[[ShotEvent], None],
                 warnings: list[str], interval_s: float = 0.25) -> None:
        super().__init__(json_lines=False)
        self._shot, self._attempt, self._send = shot, attempt, emit
        self._warnings, self._interval_s = warnings, interval_s
        self._last: dict[str, float] = {}

    def send(self, kind: str, **fields: Any) -> None:
        self._send(ShotEvent(self._shot, self._attempt, kind, fields))

    def progress(self, stage: str, done: int, total: int, values: dict[str, float] | None = None) -> None:
        now = time.monotonic()
        if done < total and now - self._last.get(stage, float("-inf")) < self._interval_s:
            return
        self._last[stage] = now
        self.send(PROGRESS, stage=stage, done=done, total=total, values=values or {})

    def log(self, message: str) -> None:
        self.send(LOG, message=message)

    def warning(self, message: str) -> None:
        self._warnings.append(message)
        self.send(WARNING, message=message)


def run_shot(shot: Shot, attempt: int, emit: Callable[[ShotEvent], None]) -> ShotOutcome:
    """Attempt `shot` here: its results directory written whole, or nothing (track's atomic
    output). A failure is returned, not raised; a cancel (signal, Ctrl-C, Ray's cancel) is raised
    as Cancelled once track has removed its partial output."""
    from ..track import run_track

    outcome = ShotOutcome(shot.name, "running", attempts=attempt, started_at=time.time(),
                          host=socket.gethostname(), pid=os.getpid())
    sink = ShotSink(shot.name, attempt, emit, outcome.warnings)
    start = time.perf_counter()
    # Signal handlers can be set from the main thread only (a Ray task runs there; a test's thread does not).
    guard = cancellable() if threading.current_thread() is threading.main_thread() else nullcontext()
    try:
        with guard:
            settings = replace(shot.settings, device=resolve_device(shot.settings.device))
            sink.send(STARTED, pid=outcome.pid, host=outcome.host, device=settings.device)
            run_track(settings, sink)
        outcome.status = "done"
        outcome.result = result_summary(shot)
    except Cancelled:
        raise
    except KeyboardInterrupt:
        raise Cancelled("cancelled by keyboard interrupt") from None
    except BackendError as exc:
        outcome.failed_attempt(exc.kind, exc.message)
    except Exception as exc:  # a bug or a machine's failure: reported with the shot, the batch goes on
        outcome.failed_attempt(protocol.ERROR_INTERNAL, f"{type(exc).__name__}: {exc}")
    outcome.wall_s = time.perf_counter() - start
    return outcome


def result_summary(shot: Shot) -> dict[str, Any]:
    """What the batch report shows of a finished shot's result.json."""
    document = json.loads((shot.settings.out / RESULT_JSON).read_text())
    return {key: document.get(key) for key in ("tracker", "metrics", "warnings", "timings_s")}
