"""`batch --engine ray`: one Ray task per shot, on a running cluster (--address) or on a local one
started for the batch and stopped after it.

Every node imports the backend from the driver's FaceAdapt folder (the same path on every node:
shared storage, like the footage and --out), and is checked on connecting to run it with the
driver's FaceAdapt, Python and locked packages. A shot asking for device "cuda" asks Ray for a
GPU; other shots for --cpus-per-shot CPUs. Ray's own retries are off: the batch retries a shot
whose worker died or failed for another reason than its input, and never a bad input.
"""

from __future__ import annotations

import os
import signal
import socket
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from queue import Empty
from typing import Any

import ray
from ray.exceptions import GetTimeoutError, RayError, RayTaskError, TaskCancelledError
from ray.util.queue import Queue
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

from ..events import CANCEL_SIGNALS
from ..formats import protocol
from ..formats.atomic import release_dead_writer
from ..formats.errors import BadInput, Cancelled
from .shot_file import Shot
from .shot_run import STARTED, ShotEvent, ShotOutcome, run_shot
from .versions import EXTENSION_ROOT, locked_package_names, refuse_mismatches, runtime_versions

PROBE_TIMEOUT_S = 120.0  # a node that has not answered the version probe by then is refused
CANCEL_GRACE_S = 30.0  # a cancelled shot's time to remove its partial output before its worker is killed
LOCAL_OBJECT_STORE_BYTES = 256 * 1024**2  # shots pass settings and outcomes only: a small store
_WAIT_S = 0.2  # how often finished shots and events are collected


def _check_reachable(address: str) -> None:
    """BadInput unless something listens at `address` (host:port of the cluster's head), so an
    unreachable cluster is named in seconds rather than after Ray's own long retries."""
    if address.startswith("ray://"):
        raise BadInput(f"--address {address}: Ray Client (ray://) is not part of FaceAdapt's farm "
                       "extra; run the batch on a node of the cluster with the head's address "
                       "(host:6379) or 'auto'")
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit():
        raise BadInput(f"--address {address}: expected host:port of the cluster's head (e.g. "
                       "10.0.0.1:6379), or 'auto' for a cluster started on this machine")
    try:
        socket.create_connection((host, int(port)), timeout=5).close()
    except OSError as exc:
        raise BadInput(f"--address {address}: no Ray cluster answers there ({exc.strerror or exc}); "
                       "start one with `ray start --head` or check the address") from None


@contextmanager
def _signals_noted() -> Iterator[list[int]]:
    """While Ray is in charge: the cancel signals (SIGTERM, SIGHUP, and Ctrl-C's SIGINT) are noted
    in the yielded list, for the caller to act on between waits (raised inside Ray's calls, C
    code, a Cancelled surfaces as a SystemError, and a KeyboardInterrupt was seen lost), and the
    handlers found on entry are put back on exit, also over the one ray.init installs (it exits
    at once, killing the shots before they remove their partial output)."""
    noted: list[int] = []
    if threading.current_thread() is not threading.main_thread():
        yield noted
        return
    handlers = {signum: signal.getsignal(signum) for signum in (*CANCEL_SIGNALS, signal.SIGINT)}
    for signum in handlers:
        signal.signal(signum, lambda signum, _frame: noted.append(signum))
    try:
        yield noted
    finally:
        for signum, handler in handlers.items():
            if handler is not None:
                signal.signal(signum, handler)


def _node_versions(packages: list[str]) -> dict[str, str]:
    return runtime_versions(packages)


def _shot_task(shot: Shot, attempt: int, events: Queue) -> ShotOutcome:
    """One attempt at a shot on a worker; its events go to the driver through `events`, sent
    without waiting: a task blocked in ray.get lends its CPUs back to Ray, which then starts
    another shot on them (seen: every shot of a 2-CPU node at once, each 7x slower). An event
    the full queue refuses is dropped: progress is best-effort, the outcome is not."""
    def emit(event: ShotEvent) -> None:
        events.actor.put_nowait.remote(event)

    return run_shot(shot, attempt, emit)


class RayEngine:
    """Runs the shots as Ray tasks; `connect` before `run`, `close` after (always)."""

    name = "ray"

    def __init__(self, address: str | None, cpus_per_shot: float) -> None:
        self.address = address
        self.cpus_per_shot = cpus_per_shot
        self._started_here = False

    def describe(self) -> str:
        where = f"the Ray cluster at {self.address}" if self.address else "a local Ray cluster"
        return f"{where}, {self.cpus_per_shot:g} CPU(s) per shot"

    def connect(self, shots: list[Shot], expected: dict[str, str] | None = None) -> None:
        """Connect (or start a local cluster) and refuse, before any shot runs, a cluster that
        cannot run them: unreachable, nodes running another backend than this driver (or
        `expected`), no GPU for a shot that asks for CUDA, no node with --cpus-per-shot CPUs."""
        if self.address not in (None, "auto"):
            _check_reachable(self.address)
        # A shot's torch threads are the CPUs it reserved, whatever the driver's environment says.
        env = {"PYTHONPATH": str(EXTENSION_ROOT), "OMP_NUM_THREADS": str(max(1, int(self.cpus_per_shot))),
               **{k: v for k, v in os.environ.items() if k.startswith("FACEADAPT_")}}
        options: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False,
                                   "configure_logging": False, "runtime_env": {"env_vars": env}}
        if self.address is None:
            options["object_store_memory"] = LOCAL_OBJECT_STORE_BYTES
        with _signals_noted() as signals:
            try:
                ray.init(address=self.address or "local", **options)
            except (ConnectionError, RuntimeError, ValueError) as exc:
                where = f"--address {self.address}: cannot connect to the Ray cluster" if self.address else \
                    "cannot start a local Ray cluster"
                raise BadInput(f"{where} ({exc})") from None
            packages = locked_package_names()
            self._check_versions(expected or runtime_versions(packages), packages, signals)
        self._check_resources(shots)

    def _check_versions(self, expected: dict[str, str], packages: list[str], signals: list[int]) -> None:
        nodes = [n for n in ray.nodes() if n.get("Alive")]
        probe = ray.remote(_node_versions)
        probes = {f"{n['NodeManagerAddress']} ({n['NodeID'][:8]})": probe.options(
            num_cpus=0, max_retries=0,
            scheduling_strategy=NodeAffinitySchedulingStrategy(n["NodeID"], soft=False)).remote(packages)
            for n in nodes}
        found = {}
        for node, probe in probes.items():
            try:
                for _ in range(int(PROBE_TIMEOUT_S / _WAIT_S)):  # a cancel is acted on between waits
                    if signals:
                        raise Cancelled(f"cancelled by signal {signal.Signals(signals[0]).name}")
                    if ray.wait([probe], timeout=_WAIT_S)[0]:
                        break
                found[node] = ray.get(probe, timeout=0)
            except GetTimeoutError:
                raise BadInput(f"Ray node {node} did not answer FaceAdapt's version check within "
                               f"{PROBE_TIMEOUT_S:g} s; check the node or remove it from the cluster") from None
            except RayError as exc:
                raise BadInput(f"Ray node {node} cannot run FaceAdapt's backend from {EXTENSION_ROOT} "
                               f"(the same path on every node, on shared storage): {exc}") from None
        refuse_mismatches(expected, found, self.address or "local")

    def _check_resources(self, shots: list[Shot]) -> None:
        """Refuse shots no node can take (they would wait for ever): a node must hold
        --cpus-per-shot CPUs, and for a CUDA shot a GPU too."""
        nodes = [n["Resources"] for n in ray.nodes() if n.get("Alive")]
        largest = max((n.get("CPU", 0) for n in nodes), default=0)
        if self.cpus_per_shot > largest:
            raise BadInput(f"--cpus-per-shot {self.cpus_per_shot:g}: no node of the Ray cluster has that "
                           f"many CPUs (the largest has {largest:g})")
        gpu_shots = [s.name for s in shots if s.wants_gpu]
        if gpu_shots and not any(n.get("GPU", 0) >= 1 and n.get("CPU", 0) >= self.cpus_per_shot for n in nodes):
            raise BadInput(f"shots {', '.join(gpu_shots)} ask for device cuda and no node of the Ray cluster "
                           f"has a GPU and {self.cpus_per_shot:g} CPU(s); set device = \"cpu\" or \"auto\" for "
                           "them, lower --cpus-per-shot, or add GPU nodes")

    def run(self, shots: list[Shot], retries: int, emit: Callable[[ShotEvent], None],
            finished: Callable[[ShotOutcome], None]) -> None:
        """Submit every shot; hand each event to `emit` and each outcome to `finished` as it
        comes. A cancel (Ctrl-C, SIGTERM) cancels every shot, gives running ones CANCEL_GRACE_S
        to remove their partial output, kills what is left and raises Cancelled."""
        events = Queue(maxsize=10_000, actor_options={"num_cpus": 0})
        events.qsize()  # the queue's actor is up before the first shot's first event
        running: dict[Any, tuple[Shot, int, list[str]]] = {}

        def submit(shot: Shot, attempt: int, errors: list[str]) -> None:
            task = ray.remote(_shot_task).options(
                num_cpus=self.cpus_per_shot, num_gpus=1 if shot.wants_gpu else 0, max_retries=0,
                name=f"faceadapt-shot-{shot.name}")
            running[task.remote(shot, attempt, events)] = (shot, attempt, errors)

        workers: dict[tuple[str, int], int] = {}  # (shot, attempt) -> its worker's pid

        def on_event(event: ShotEvent) -> None:
            if event.kind == STARTED:
                workers[event.shot, event.attempt] = event.fields["pid"]
            emit(event)

        with _signals_noted() as signals:
            try:
                for shot in shots:
                    submit(shot, 1, [])
                while running:
                    if signals:
                        raise Cancelled(f"cancelled by signal {signal.Signals(signals[0]).name}")
                    ready, _ = ray.wait(list(running), num_returns=1, timeout=_WAIT_S)
                    self._drain(events, on_event)
                    for ref in ready:
                        shot, attempt, errors = running.pop(ref)
                        outcome = self._outcome(ref, shot, attempt, workers.get((shot.name, attempt)))
                        errors += outcome.attempt_errors
                        if outcome.retryable(retries):
                            submit(shot, attempt + 1, errors)
                            continue
                        outcome.attempt_errors = errors
                        finished(outcome)
                self._drain(events, on_event)
            except (KeyboardInterrupt, Cancelled) as exc:
                for ref in self._cancel(list(running)):  # shots that finished all the same are kept
                    running.pop(ref)
                    with suppress(RayError):
                        outcome = ray.get(ref)
                        if outcome.status == "done":
                            finished(outcome)
                why = exc.message if isinstance(exc, Cancelled) else "keyboard interrupt"
                raise Cancelled(f"batch cancelled ({why}); {len(running)} unfinished shot(s) stopped") from None

    @staticmethod
    def _outcome(ref: Any, shot: Shot, attempt: int, worker: int | None) -> ShotOutcome:
        try:
            return ray.get(ref)
        except TaskCancelledError:  # not by this batch (it has stopped waiting then): a node stopping
            message = "it was cancelled on its worker (the node stopping?)"
        except RayTaskError as exc:
            message = f"{type(exc.cause).__name__}: {exc.cause}"
        except RayError as exc:  # the worker or its node died (killed, out of memory)
            message = f"its Ray worker died ({type(exc).__name__}: {str(exc).splitlines()[0]})"
            if worker is not None:  # its lock and temp output, which only its own machine could tell stale
                release_dead_writer(shot.settings.out, worker)
        outcome = ShotOutcome(shot.name, "failed", attempts=attempt)
        outcome.failed_attempt(protocol.ERROR_INTERNAL, message)
        return outcome

    @staticmethod
    def _drain(events: Queue, emit: Callable[[ShotEvent], None]) -> None:
        try:
            waiting = events.qsize()
            batch = events.get_nowait_batch(waiting) if waiting else []
        except (Empty, RayError):  # the queue's actor lost with its node: progress stops, shots go on
            batch = []
        for event in batch:
            emit(event)

    @staticmethod
    def _cancel(refs: list[Any]) -> list[Any]:
        """Cancel the tasks of `refs`, kill those not ended within CANCEL_GRACE_S; returns those
        that ended."""
        for ref in refs:
            ray.cancel(ref)
        ended, left = ray.wait(refs, num_returns=len(refs), timeout=CANCEL_GRACE_S) if refs else ([], [])
        for ref in left:
            ray.cancel(ref, force=True)
        return ended

    def close(self) -> None:
        """Disconnect; a local cluster started by `connect` stops with its workers."""
        if ray.is_initialized():
            ray.shutdown()
