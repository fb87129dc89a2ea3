"""Check Backend and Install Backend: the interpreter that runs `python -m backend`."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import bpy

from ..blender_addon import backend_python, preferences
from ..blender_addon.backend_client import EXTENSION_ROOT

LOCK_FILE = EXTENSION_ROOT / "requirements.lock"


class FACEADAPT_OT_check_backend(bpy.types.Operator):
    """Check that the backend interpreter runs and can import torch; show its device"""

    bl_idname = "faceadapt.check_backend"
    bl_label = "Check Backend"

    def execute(self, context: bpy.types.Context) -> set[str]:
        status = backend_python.check(preferences.backend_interpreter(context))
        preferences.get(context).status = status.message
        self.report({"INFO"} if status.ok else {"ERROR"}, status.message)
        return {"FINISHED"} if status.ok else {"CANCELLED"}


def install_commands(venv: str) -> list[list[str]]:
    """Create the venv with Blender's Python and install the pinned lock file into it."""
    python = str(backend_python.venv_python(Path(venv)))
    return [[sys.executable, "-m", "venv", venv],
            [python, "-m", "pip", "install", "--upgrade", "pip"],
            [python, "-m", "pip", "install", "--no-deps", "-r", str(LOCK_FILE)]]


class FACEADAPT_OT_install_backend(bpy.types.Operator):
    """Create a Python environment for the backend in FaceAdapt's user folder and install its
    pinned packages (torch, mediapipe, ...; several GB) from PyPI"""

    bl_idname = "faceadapt.install_backend"
    bl_label = "Install Backend"

    _process: subprocess.Popen | None = None
    _steps: list[list[str]] = []
    _timer = None

    def _refusal(self) -> str | None:
        if not bpy.app.online_access:
            return ("Install Backend needs internet access, which is off: enable "
                    "Preferences > System > Network > Allow Online Access, or point FaceAdapt's "
                    "preferences at an existing backend interpreter")
        if not LOCK_FILE.is_file():
            return f"the extension's lock file is missing ({LOCK_FILE}); reinstall FaceAdapt"
        return None

    def execute(self, context: bpy.types.Context) -> set[str]:
        refusal = self._refusal()
        if refusal:
            self.report({"ERROR"}, refusal)
            return {"CANCELLED"}
        venv = str(preferences.user_directory() / "venv")
        for command in install_commands(venv):
            done = subprocess.run(command, capture_output=True, text=True)
            if done.returncode != 0:
                self.report({"ERROR"}, f"{' '.join(command[:4])} failed: {done.stderr[-500:]}")
                return {"CANCELLED"}
        preferences.get(context).status = "installed in " + venv
        return {"FINISHED"}

    def invoke(self, context: bpy.types.Context, event: bpy.types.Event) -> set[str]:
        refusal = self._refusal()
        if refusal:
            self.report({"ERROR"}, refusal)
            return {"CANCELLED"}
        if bpy.app.background:
            return self.execute(context)
        self._steps = install_commands(str(preferences.user_directory() / "venv"))
        self._process = subprocess.Popen(self._steps.pop(0), stdout=subprocess.DEVNULL,
                                         stderr=subprocess.PIPE, text=True)
        self._timer = context.window_manager.event_timer_add(0.5, window=context.window)
        context.window_manager.modal_handler_add(self)
        return {"RUNNING_MODAL"}

    def modal(self, context: bpy.types.Context, event: bpy.types.Event) -> set[str]:
        assert self._process is not None
        if event.type == "ESC":
            self._process.terminate()
        if event.type not in {"TIMER", "ESC"}:
            return {"PASS_THROUGH"}
        context.workspace.status_text_set(
            f"FaceAdapt: installing backend, {len(self._steps)} step(s) left (Esc to cancel)")
        code = self._process.poll()
        if code is None:
            return {"RUNNING_MODAL"}
        if code == 0 and self._steps:
            self._process = subprocess.Popen(self._steps.pop(0), stdout=subprocess.DEVNULL,
                                             stderr=subprocess.PIPE, text=True)
            return {"RUNNING_MODAL"}
        context.window_manager.event_timer_remove(self._timer)
        context.workspace.status_text_set(None)
        if code != 0:
            error = self._process.stderr.read()[-500:] if self._process.stderr else ""
            self.report({"ERROR"}, f"Install Backend failed (exit {code}): {error}")
            return {"CANCELLED"}
        preferences.get(context).status = "installed"
        return {"FINISHED"}
