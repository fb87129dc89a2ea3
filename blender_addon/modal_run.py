"""A backend run driven by a modal operator's timer (plain Python, no bpy, so it is unit-tested).

While the run lasts Blender shows a timer, a progress bar and status text; they must go away
on every way out: the run ends, fails or is cancelled, showing progress raises, the operator's
`finish` raises, or Blender cancels the operator (a file is loaded, the window closes). The
operator supplies `show` and `take_down` (the bpy calls); `ModalRun` calls `take_down` exactly
once, before anything that could raise after the run has ended.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from ..backend.formats import protocol
from .backend_client import BackendFailure, BackendRun, Progress

RUNNING = "RUNNING_MODAL"
FINISHED = "FINISHED"
CANCELLED = "CANCELLED"


def failure_message(exc: BackendFailure) -> str:
    return f"FaceAdapt backend ({exc.kind}): {exc.message}"


@dataclass
class ModalRun:
    """run: the backend process; show(progress): update the status text and progress bar;
    take_down(): remove the timer, end the progress bar and clear the status text."""

    run: BackendRun
    show: Callable[[Progress], None]
    take_down: Callable[[], None]
    displayed: bool = True

    def tick(self, finish: Callable[[str], str], report: Callable[[str, str], None]) -> str:
        """One timer event: RUNNING while the backend runs; once it has ended, the display is
        taken down and then either `finish(result path)` decides (FINISHED or CANCELLED) or
        the failure is reported (`report(level, message)`, level WARNING for a cancel, else
        ERROR) and the answer is CANCELLED."""
        try:
            if not self.run.poll():
                self.show(self.run.progress)
                return RUNNING
        except BaseException:
            self.abandon()
            raise
        self.end_display()
        try:
            result = self.run.outcome()
        except BackendFailure as exc:
            report("WARNING" if exc.kind == protocol.ERROR_CANCELLED else "ERROR",
                   failure_message(exc))
            return CANCELLED
        return finish(result)

    def cancel(self) -> None:
        """Esc: ask the backend to stop; the next ticks show it ending."""
        self.run.cancel()

    def abandon(self) -> None:
        """Blender cancelled the operator, or showing progress failed: stop the backend (its
        process group ends in the background) and take the display down now."""
        self.run.cancel()
        self.end_display()

    def end_display(self) -> None:
        if self.displayed:
            self.displayed = False
            self.take_down()
