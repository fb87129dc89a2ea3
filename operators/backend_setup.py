"""Check Backend and Install Backend: the interpreter that runs `python -m backend`.

Install Backend's logic (which Python, the commands, progress, cancel) is plain Python in
`blender_addon.backend_install`; these operators gather the preferences and show progress.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import bpy

from ..blender_addon import backend_install, backend_python, preferences

OFFLINE_REFUSAL = ("Install Backend needs internet access, which is off: enable Preferences > "
                   "System > Network > Allow Online Access, or point FaceAdapt's preferences at "
                   "an existing backend interpreter")


class FACEADAPT_OT_check_backend(bpy.types.Operator):
    """Check that the backend interpreter runs and can import torch; show its device"""

    bl_idname = "faceadapt.check_backend"
    bl_label = "Check Backend"

    def execute(self, context: bpy.types.Context) -> set[str]:
        status = backend_python.check(preferences.backend_interpreter(context))
        preferences.get(context).status = status.message
        self.report({"INFO"} if status.ok else {"ERROR"}, status.message)
        return {"FINISHED"} if status.ok else {"CANCELLED"}


class FACEADAPT_OT_install_backend(bpy.types.Operator):
    """Make a Python environment for the backend in FaceAdapt's user folder and install its
    pinned packages (torch, mediapipe, ...; several GB) from PyPI. It needs Python 3.11 or
    3.12: Blender's own when it is one of those, else one installed on this computer, else
    one that uv downloads"""

    bl_idname = "faceadapt.install_backend"
    bl_label = "Install Backend"

    _installation: backend_install.Installation | None = None
    _timer = None

    def _prepare(self, context: bpy.types.Context) -> backend_install.Installation | None:
        """The installation to run, or None after reporting why it cannot start."""
        if not bpy.app.online_access:
            self.report({"ERROR"}, OFFLINE_REFUSAL)
            return None
        named = preferences.get(context).install_python
        try:
            return backend_install.prepare(bpy.path.abspath(named) if named else "",
                                           Path(sys.executable), preferences.user_directory())
        except backend_install.InstallRefused as exc:
            self.report({"ERROR"}, str(exc))
            return None

    def _report_outcome(self, context: bpy.types.Context,
                        installation: backend_install.Installation) -> set[str]:
        try:
            message = installation.outcome()
        except backend_install.InstallFailed as exc:
            preferences.get(context).status = ("install cancelled" if exc.cancelled
                                               else f"install failed: see {installation.log_path}")
            self.report({"WARNING"} if exc.cancelled else {"ERROR"}, str(exc))
            return {"CANCELLED"}
        preferences.get(context).status = f"installed in {installation.venv}: {message}"
        self.report({"INFO"}, f"Backend installed in {installation.venv}: {message}")
        return {"FINISHED"}

    def execute(self, context: bpy.types.Context) -> set[str]:
        installation = self._prepare(context)
        if installation is None:
            return {"CANCELLED"}
        installation.wait(on_progress=_progress_printer())
        return self._report_outcome(context, installation)

    def invoke(self, context: bpy.types.Context, event: bpy.types.Event) -> set[str]:
        if bpy.app.background:
            return self.execute(context)
        installation = self._prepare(context)
        if installation is None:
            return {"CANCELLED"}
        installation.start()
        self._installation = installation
        wm = context.window_manager
        self._timer = wm.event_timer_add(0.5, window=context.window)
        wm.progress_begin(0, 1000)
        wm.modal_handler_add(self)
        return {"RUNNING_MODAL"}

    def modal(self, context: bpy.types.Context, event: bpy.types.Event) -> set[str]:
        installation = self._installation
        assert installation is not None
        if event.type == "ESC":
            installation.cancel()
        if event.type not in {"TIMER", "ESC"}:
            return {"PASS_THROUGH"}
        ended = installation.poll()
        wm = context.window_manager
        context.workspace.status_text_set(
            f"FaceAdapt Install Backend: {installation.progress.describe()}  (Esc to cancel)")
        wm.progress_update(int(installation.progress.fraction * 1000))
        if not ended:
            return {"RUNNING_MODAL"}
        wm.event_timer_remove(self._timer)
        wm.progress_end()
        context.workspace.status_text_set(None)
        return self._report_outcome(context, installation)


def _progress_printer() -> Callable[[backend_install.InstallProgress], None]:
    """Blocking installs in a terminal (background mode) show progress there when it changes."""
    last = [""]

    def show(progress: backend_install.InstallProgress) -> None:
        text = progress.describe()
        if bpy.app.background and text != last[0]:
            last[0] = text
            print(f"Install Backend: {text}", flush=True)

    return show
