"""The modal path of a backend run apart from bpy: the timer, progress bar and status text
(here recorded calls) are taken down exactly once on every way out. A small script stands in
for the backend's interpreter. What needs Blender's UI (timers and modal handlers never run in
background mode) stays untested: the bpy calls in backend_job.invoke's show/take_down."""

from __future__ import annotations

import sys
import textwrap
import time
from pathlib import Path

import pytest

from faceadapt.blender_addon.backend_client import Progress, start_backend
from faceadapt.blender_addon.modal_run import CANCELLED, FINISHED, RUNNING, ModalRun

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="the stand-in runs through a shebang")

STAND_IN = textwrap.dedent("""\
    import json, signal, sys, time

    scenario = sys.argv[3]

    def emit(event, **fields):
        print(json.dumps({"event": event, **fields}), flush=True)

    if scenario == "success":
        emit("progress", stage="fit", done=1, total=2)
        emit("result", path="/results/clip")
    elif scenario == "no_face":
        emit("error", kind="no_face", message="no face found")
        sys.exit(3)
    elif scenario == "runs":
        def stop(signum, frame):
            emit("error", kind="cancelled", message="cancelled; temp output removed")
            sys.exit(130)
        signal.signal(signal.SIGTERM, stop)
        emit("progress", stage="fit", done=1, total=4)
        time.sleep(60)
    """)


@pytest.fixture
def backend_python(tmp_path: Path) -> Path:
    path = tmp_path / "python"
    path.write_text(f"#!{sys.executable}\n{STAND_IN}")
    path.chmod(0o755)
    return path


class Display:
    """Records what the modal run asks of Blender's UI."""

    def __init__(self, fail_show: bool = False) -> None:
        self.shown: list[Progress] = []
        self.taken_down = 0
        self.fail_show = fail_show

    def show(self, progress: Progress) -> None:
        if self.fail_show:
            raise RuntimeError("the status bar's workspace is gone")
        self.shown.append(progress)

    def take_down(self) -> None:
        self.taken_down += 1


def ticks_until_done(modal: ModalRun, finish, report, timeout: float = 20.0) -> str:
    deadline = time.monotonic() + timeout
    while (state := modal.tick(finish, report)) == RUNNING:
        if time.monotonic() > deadline:
            modal.run.process.kill()
            pytest.fail(f"the modal run did not end within {timeout} s")
        time.sleep(0.01)
    return state


def test_a_finished_run_takes_the_display_down_before_finish(backend_python):
    display = Display()
    modal = ModalRun(start_backend(backend_python, ["success"]), display.show, display.take_down)
    taken_down_at_finish = []

    def finish(result: str) -> str:
        taken_down_at_finish.append((result, display.taken_down))
        return FINISHED

    assert ticks_until_done(modal, finish, lambda level, message: None) == FINISHED
    assert taken_down_at_finish == [("/results/clip", 1)]
    assert display.taken_down == 1


def test_finish_raising_leaves_no_timer_or_progress_bar(backend_python):
    display = Display()
    modal = ModalRun(start_backend(backend_python, ["success"]), display.show, display.take_down)

    def finish(result: str) -> str:
        raise RuntimeError("the scene could not be changed")

    with pytest.raises(RuntimeError, match="the scene could not be changed"):
        ticks_until_done(modal, finish, lambda level, message: None)
    assert display.taken_down == 1
    modal.abandon()  # Blender may still cancel the operator: nothing is taken down twice
    assert display.taken_down == 1


def test_a_failed_run_is_reported_as_an_error_and_takes_the_display_down(backend_python):
    display = Display()
    reports: list[tuple[str, str]] = []
    modal = ModalRun(start_backend(backend_python, ["no_face"]), display.show, display.take_down)
    state = ticks_until_done(modal, lambda result: FINISHED, lambda *report: reports.append(report))
    assert state == CANCELLED
    assert reports == [("ERROR", "FaceAdapt backend (no_face): no face found")]
    assert display.taken_down == 1


def test_esc_reports_a_warning_and_takes_the_display_down(backend_python):
    display = Display()
    reports: list[tuple[str, str]] = []
    modal = ModalRun(start_backend(backend_python, ["runs"]), display.show, display.take_down)
    deadline = time.monotonic() + 20
    while not any(progress.stage == "fit" for progress in display.shown):
        assert modal.tick(lambda result: FINISHED, reports.append) == RUNNING
        assert time.monotonic() < deadline, "no progress shown"
        time.sleep(0.01)
    assert display.taken_down == 0
    modal.cancel()
    modal.cancel()  # Esc pressed twice: the backend is asked once
    state = ticks_until_done(modal, lambda result: FINISHED, lambda *report: reports.append(report))
    assert state == CANCELLED
    assert reports == [("WARNING", "FaceAdapt backend (cancelled): cancelled; temp output removed")]
    assert display.taken_down == 1


def test_showing_progress_raising_stops_the_backend_and_takes_the_display_down(backend_python):
    display = Display(fail_show=True)
    modal = ModalRun(start_backend(backend_python, ["runs"]), display.show, display.take_down)
    with pytest.raises(RuntimeError, match="workspace is gone"):
        ticks_until_done(modal, lambda result: FINISHED, lambda level, message: None)
    assert display.taken_down == 1
    assert modal.run.process.wait(timeout=10) in (130, -15)


def test_blender_cancelling_the_operator_stops_the_backend(backend_python):
    display = Display()
    modal = ModalRun(start_backend(backend_python, ["runs"]), display.show, display.take_down)
    modal.abandon()
    modal.abandon()
    assert display.taken_down == 1
    assert modal.run.process.wait(timeout=10) in (130, -15)
