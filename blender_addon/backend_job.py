"""Operators that run the backend: a blocking path (EXEC_DEFAULT: background mode, scripts,
tests) and a modal path in the UI (progress in the status bar, Esc cancels). What the modal
path does apart from bpy calls (ending the display on every way out) is in modal_run."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from pathlib import Path

import bpy

from . import preferences
from .backend_client import BackendFailure, BackendRun, Progress, start_backend
from .backend_python import interpreter_problem
from .modal_run import ModalRun, failure_message


class UserError(Exception):
    """Input the user must fix; reported as is, nothing changed."""


# The label of the operator whose backend run is in progress in the UI and its latest progress:
# one run at a time, since two would contend for the same cores (and two tracks for one scene).
_running: list[str] = []


_modal_runs: list[ModalRun] = []  # the run behind _running, for the panel's Cancel button


def cancel_running_job() -> bool:
    """Ask the running backend job to stop (as Esc does); False when none is running."""
    if not _modal_runs:
        return False
    _modal_runs[0].cancel()
    return True


def running_job() -> str | None:
    """The backend job running in the UI and its progress ("Track Footage: detect 12/48, ETA
    10 s"), if any: the panels show it."""
    return ": ".join(_running) if _running else None


class BackendJob:
    """Mixin for bpy Operators: implement `backend_args` (called first, may raise UserError)
    and `finish` (called with the result path; must change the scene only there)."""

    _modal: ModalRun | None = None

    def backend_args(self, context: bpy.types.Context) -> list[str]:
        raise NotImplementedError

    def finish(self, context: bpy.types.Context, result_path: str) -> None:
        raise NotImplementedError

    def _start(self, context: bpy.types.Context) -> BackendRun:
        if _running:
            raise UserError(f"FaceAdapt is already running {_running[0]}: wait for it to end, or "
                            "press Esc to cancel it")
        python = preferences.backend_interpreter(context)
        problem = interpreter_problem(preferences.get(context).backend_python, bool(bpy.data.filepath),
                                      python)
        if problem is not None:
            raise UserError(problem)
        assert python is not None
        args = self.backend_args(context)
        return start_backend(python, [*args, "--device", preferences.get(context).device])

    def _finish_or_report(self, context: bpy.types.Context, result: str) -> set[str]:
        try:
            self.finish(context, result)
        except UserError as exc:
            self.report({"ERROR"}, str(exc))
            return {"CANCELLED"}
        return {"FINISHED"}

    def execute(self, context: bpy.types.Context) -> set[str]:
        try:
            run = self._start(context)
            result = run.wait(on_progress=_progress_printer(self.bl_label))
        except (UserError, BackendFailure) as exc:
            self.report({"ERROR"}, _message(exc))
            return {"CANCELLED"}
        return self._finish_or_report(context, result)

    def invoke(self, context: bpy.types.Context, event: bpy.types.Event) -> set[str]:
        if bpy.app.background:
            return self.execute(context)
        try:
            run = self._start(context)
        except (UserError, BackendFailure) as exc:
            self.report({"ERROR"}, _message(exc))
            return {"CANCELLED"}
        wm = context.window_manager
        timer = wm.event_timer_add(0.2, window=context.window)
        wm.progress_begin(0, 1000)
        # Status text is set on the workspace shown at each tick; all of them are cleared.
        workspaces: list[bpy.types.WorkSpace] = []

        def show(progress: Progress) -> None:
            workspace = bpy.context.workspace
            if workspace is not None:
                if workspace not in workspaces:
                    workspaces.append(workspace)
                workspace.status_text_set(f"FaceAdapt: {progress.describe()}  (Esc to cancel)")
            wm.progress_update(int(progress.fraction * 1000))
            del _running[1:]
            _running.append(progress.describe())
            _redraw_panels(bpy.context)

        def take_down() -> None:
            # Each step runs even when an earlier one raises.
            try:
                wm.event_timer_remove(timer)
            finally:
                try:
                    wm.progress_end()
                finally:
                    for workspace in workspaces:
                        # A workspace deleted meanwhile has no status text left to clear.
                        with contextlib.suppress(ReferenceError):
                            workspace.status_text_set(None)

        self._modal = ModalRun(run, show, take_down)
        _running.append(self.bl_label)
        _modal_runs.append(self._modal)
        wm.modal_handler_add(self)
        return {"RUNNING_MODAL"}

    def modal(self, context: bpy.types.Context, event: bpy.types.Event) -> set[str]:
        modal = self._modal
        assert modal is not None
        if event.type == "ESC":
            modal.cancel()
        if event.type not in {"TIMER", "ESC"}:
            return {"PASS_THROUGH"}

        def finish(result: str) -> str:
            return next(iter(self._finish_or_report(context, result)))

        def report(level: str, message: str) -> None:
            self.report({level}, message)

        try:
            outcome = modal.tick(finish, report)
        except BaseException:
            _forget_running()
            raise
        if outcome != "RUNNING_MODAL":
            _forget_running()
        return {outcome}

    def cancel(self, context: bpy.types.Context) -> None:
        """Blender ends the modal operator itself (a file is loaded, the window closes)."""
        _forget_running()
        if self._modal is not None:
            self._modal.abandon()


def _forget_running() -> None:
    _running.clear()
    _modal_runs.clear()


def _redraw_panels(context: bpy.types.Context) -> None:
    """The panels show the running job's progress: redraw them as it changes."""
    screen = getattr(context, "screen", None)
    for area in screen.areas if screen is not None else ():
        if area.type in {"VIEW_3D", "CLIP_EDITOR"}:
            area.tag_redraw()


def _message(exc: Exception) -> str:
    return failure_message(exc) if isinstance(exc, BackendFailure) else str(exc)


def _progress_printer(label: str) -> Callable[[Progress], None]:
    """Blocking runs in a terminal (background mode) show progress there when it changes."""
    last = [""]

    def show(progress: Progress) -> None:
        text = progress.describe()
        if bpy.app.background and progress.stage and text != last[0]:
            last[0] = text
            print(f"{label}: {text}", flush=True)

    return show


def results_folder(context: bpy.types.Context) -> Path:
    """Where results folders go: the panel's Output Folder, else beside the .blend
    (//faceadapt), else the extension's user folder (an unsaved file has no folder)."""
    chosen = context.scene.faceadapt.output_base()
    if chosen is not None:
        return chosen
    return (Path(bpy.path.abspath("//")) / "faceadapt" if bpy.data.filepath
            else preferences.user_directory() / "results")


def output_dir(context: bpy.types.Context, name: str) -> Path:
    """A fresh results folder NAME-<time> in results_folder."""
    import time

    base = results_folder(context)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    safe = "".join(c if c.isalnum() or c in "-_" else "_" for c in name)
    return base / f"{safe}-{stamp}"
