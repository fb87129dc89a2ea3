"""`python -m backend batch SHOTS.toml --out DIR`: check every shot, skip those finished before with
the same settings, run the rest on an engine (this process, or Ray), report progress per shot and
overall, write batch.json and batch.md. A failed shot never stops the others; the command fails
(after the report) when any shot failed."""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from ..config_parser import option, positional, required
from ..events import CANCEL_SIGNALS, EventSink
from ..formats import protocol
from ..formats.errors import BackendError, BadInput, Cancelled
from ..formats.results_dir import RESULT_JSON
from .batch_report import batch_document, shot_entry, write_report
from .local_engine import LocalEngine
from .shot_file import BATCH_MARKDOWN, Shot, load_shot_file
from .shot_record import finished_before, has_record, record_finished, record_running, settings_digest
from .shot_run import PROGRESS, STARTED, WARNING, ShotEvent, ShotOutcome, result_summary
from .versions import EXTENSION_ROOT

BATCH_STAGE = "batch"  # the overall progress: frames of finished shots out of all to run


@dataclass(frozen=True)
class BatchConfig:
    shots: Path = positional("shot file (TOML: [defaults] and [[shot]] tables; docs/batch.md)")
    out: Path = required("folder of the shots' results directories (<out>/<shot name>) and the report")
    engine: Literal["local", "ray"] = option("local", "local: one shot after another in this process; "
                                             "ray: one Ray task per shot")
    address: str | None = option(None, "Ray cluster to run on (host:port of its head, or 'auto'); "
                                       "default: start a local one for the batch")
    retries: int = option(2, "further attempts at a shot that failed for another reason than its input")
    cpus_per_shot: float = option(1.0, "CPUs Ray reserves for each shot (--engine ray)")
    partial_ok: bool = option(False, "succeed when some shots failed and others finished (each failure a "
                                     "warning): for callers that import the finished shots")

    def __post_init__(self) -> None:
        if self.retries < 0:
            raise BadInput(f"--retries {self.retries}: must be 0 or more")
        if self.address is not None and self.engine != "ray":
            raise BadInput("--address names a Ray cluster: pass --engine ray with it")
        if not self.cpus_per_shot > 0:
            raise BadInput(f"--cpus-per-shot {self.cpus_per_shot:g}: must be above 0")
        if self.cpus_per_shot != 1 and self.engine != "ray":
            raise BadInput("--cpus-per-shot is what Ray reserves per shot: pass --engine ray with it")


class ShotsFailed(BackendError):
    """Some shots failed (the others finished); the error kind is theirs when they share one."""

    def __init__(self, message: str, kind: str) -> None:
        super().__init__(message)
        self.kind = kind


class BatchProgress:
    """Turns the shots' events into the batch's: each shot's stages as "<shot> <stage>", its logs
    and warnings prefixed with its name, and the overall BATCH_STAGE with the count of shots
    done, running, failed and remaining."""

    def __init__(self, sink: EventSink, shots: list[Shot]) -> None:
        self._sink = sink
        self._frames = {s.name: s.frame_count for s in shots}
        self._total = sum(self._frames.values())
        self._running: set[str] = set()
        self._finished: dict[str, str] = {}
        self._frames_finished = 0
        self._report()

    def event(self, event: ShotEvent) -> None:
        if event.kind == STARTED:
            if event.shot in self._finished:  # it arrived after its shot's end (events are not awaited)
                return
            self._running.add(event.shot)
            self._sink.log(f"[{event.shot}] attempt {event.attempt} started on {event.fields['host']} "
                           f"(pid {event.fields['pid']}, {event.fields['device']})")
            self._report()
        elif event.kind == PROGRESS:
            fields = event.fields
            self._sink.progress(f"{event.shot} {fields['stage']}", fields["done"], fields["total"],
                                fields.get("values") or None)
        elif event.kind == WARNING:
            self._sink.warning(f"[{event.shot}] {event.fields['message']}")
        else:
            self._sink.log(f"[{event.shot}] {event.fields['message']}")

    def finished(self, outcome: ShotOutcome) -> None:
        self._running.discard(outcome.name)
        self._finished[outcome.name] = outcome.status
        self._frames_finished += self._frames[outcome.name]
        if outcome.status == "failed":
            self._sink.warning(f"[{outcome.name}] failed after {outcome.attempts} attempt(s): {outcome.error}")
        else:
            self._sink.log(f"[{outcome.name}] {outcome.status} in {outcome.wall_s:.1f} s")
        self._report()

    def _report(self) -> None:
        statuses = list(self._finished.values())
        values = {"done": statuses.count("done"), "running": len(self._running),
                  "failed": statuses.count("failed"),
                  "remaining": len(self._frames) - len(statuses) - len(self._running)}
        self._sink.progress(BATCH_STAGE, self._frames_finished, max(self._total, 1),
                            {k: float(v) for k, v in values.items()})


def _refuse_results_not_ours(shots: list[Shot], out: Path) -> None:
    """BadInput for results directories at --out/<name> that no run of a batch there recorded (a
    `track` run's, or another batch's in another folder): a batch replaces only its own."""
    foreign = [s for s in shots if (s.settings.out / RESULT_JSON).is_file() and not has_record(out, s.name)]
    if foreign:
        raise BadInput("results directories this batch did not write stand where shots would go: "
                       + ", ".join(str(s.settings.out) for s in foreign)
                       + "; move them, or give those shots other names")


def _ignore_further_cancels() -> None:
    if threading.current_thread() is threading.main_thread():
        for signum in (*CANCEL_SIGNALS, signal.SIGINT):
            signal.signal(signum, signal.SIG_IGN)


def _require_writable(out: Path) -> None:
    """--out made when missing; BadInput unless this process may write in it (before any shot)."""
    try:
        Path(out).mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise BadInput(f"--out {out}: cannot create it ({exc.strerror}); choose a writable folder") from None
    if not os.access(out, os.W_OK | os.X_OK):
        raise BadInput(f"--out {out}: not writable; choose a writable folder")


def make_engine(config: BatchConfig):  # -> LocalEngine | RayEngine
    if config.engine == "local":
        return LocalEngine()
    try:
        from .ray_engine import RayEngine
    except ImportError as exc:
        raise BadInput(f"--engine ray: Ray is not installed in this environment ({exc}); install the farm "
                       f"extra: {sys.executable} -m pip install --no-deps -r "
                       f"{EXTENSION_ROOT / 'requirements-farm.lock'}") from None
    return RayEngine(config.address, config.cpus_per_shot)


def run_batch(config: BatchConfig, sink: EventSink,
              observe: Callable[[ShotEvent], None] | None = None) -> Path:
    """Run the shot file; returns batch.json's path. `observe` sees every shot event as it
    arrives (the Blender operator's status bar, tests)."""
    start = time.perf_counter()
    shots = load_shot_file(config.shots, config.out)
    out = shots[0].settings.out.parent  # --out, absolute
    digests = {s.name: settings_digest(s) for s in shots}  # taken now: a plate re-delivered later is new
    _refuse_results_not_ours(shots, out)
    outcomes: dict[str, ShotOutcome] = {}
    for shot in shots:
        if finished_before(shot, out, digests[shot.name]):
            outcomes[shot.name] = ShotOutcome(shot.name, "skipped", result=result_summary(shot))
    pending = [s for s in shots if s.name not in outcomes]
    if outcomes:
        sink.log(f"skipping {len(outcomes)} shot(s) finished before with the same settings: "
                 + ", ".join(outcomes))
    engine = make_engine(config)

    def event(shot_event: ShotEvent) -> None:
        progress.event(shot_event)
        if observe:
            observe(shot_event)

    def finished(outcome: ShotOutcome) -> None:
        if outcome.status == "done":
            record_finished(by_name[outcome.name], out, digests[outcome.name])
        outcomes[outcome.name] = outcome
        progress.finished(outcome)

    by_name = {s.name: s for s in shots}
    status = None  # set once shots run: what the report says of the batch
    try:
        if pending:
            engine.connect(pending)  # every refusal of the cluster comes before any shot runs
            _require_writable(out)
            for shot in pending:
                record_running(out, shot.name)
            sink.log(f"running {len(pending)} shot(s) on {engine.describe()}")
            progress = BatchProgress(sink, pending)
            status = "interrupted"
            engine.run(pending, config.retries, event, finished)
        status = "finished"
    except (Cancelled, KeyboardInterrupt):
        _ignore_further_cancels()  # a second Esc or Ctrl-C must not cut the shutdown and the report short
        status = "cancelled" if status else None
        raise
    finally:
        engine.close()
        if status:  # a cancelled or interrupted batch reports what it finished too
            document = batch_document(
                config.shots, out, engine.describe(), status, time.perf_counter() - start,
                [shot_entry(s, outcomes.get(s.name) or ShotOutcome(s.name, "cancelled")) for s in shots])
            report = write_report(out, document)
    failed = [o for o in outcomes.values() if o.status == "failed"]
    if failed and config.partial_ok and len(failed) < len(shots):
        sink.warning(f"{len(failed)} of {len(shots)} shot(s) failed ({', '.join(o.name for o in failed)}); "
                     f"see {out / BATCH_MARKDOWN}")
    elif failed:
        kinds = {o.error_kind for o in failed}
        names = ", ".join(o.name for o in failed)
        raise ShotsFailed(f"{len(failed)} of {len(shots)} shot(s) failed ({names}); the others "
                          f"finished; see {out / BATCH_MARKDOWN}",
                          kinds.pop() if len(kinds) == 1 else protocol.ERROR_INTERNAL)
    return report
