"""`batch --engine local`: the shots one after another in this process (no Ray needed)."""

from __future__ import annotations

from collections.abc import Callable

from ..device import resolve_device
from ..formats.errors import BadInput
from .shot_file import Shot
from .shot_run import ShotEvent, ShotOutcome, run_shot


class LocalEngine:
    """Runs each shot here, retrying a failure not of its input up to `retries` more times."""

    name = "local"

    def describe(self) -> str:
        return "this process, one shot at a time"

    def connect(self, shots: list[Shot]) -> None:
        """Refuse, before any shot runs, a shot asking for CUDA where torch sees none."""
        for shot in shots:
            if shot.wants_gpu:
                try:
                    resolve_device("cuda")
                except BadInput as exc:
                    raise BadInput(f"shot {shot.number} ({shot.name}): field 'device': {exc.message}") from None

    def run(self, shots: list[Shot], retries: int, emit: Callable[[ShotEvent], None],
            finished: Callable[[ShotOutcome], None]) -> None:
        """Hand each shot's outcome to `finished` as it ends. A cancel (Cancelled) propagates once
        the running shot has removed its partial output."""
        for shot in shots:
            attempt, errors = 1, []
            while True:
                outcome = run_shot(shot, attempt, emit)
                errors += outcome.attempt_errors
                if not outcome.retryable(retries):
                    break
                attempt += 1
            outcome.attempt_errors = errors
            finished(outcome)

    def close(self) -> None:
        """Nothing to release."""
