"""Which Python interpreter runs the backend, and whether it can (plain Python, no bpy)."""

from __future__ import annotations

import json
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

from .backend_client import EXTENSION_ROOT

ENV_VARIABLE = "FACEADAPT_BACKEND_PYTHON"
# Everything `python -m backend track` imports, so a half-installed environment is caught here.
# Its last stdout line is a JSON object (read by `check_answer`); Install Backend runs it too.
CHECK_CODE = ("import json, torch, cv2, mediapipe, warp, anny, imageio_ffmpeg; "
          "print(json.dumps({'torch': torch.__version__, 'cuda': torch.cuda.is_available()}))")


def venv_python(venv: Path) -> Path:
    return venv / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def candidates(preference: str, user_venv: Path | None) -> list[Path]:
    """Interpreters in the order they are tried: the preference, $FACEADAPT_BACKEND_PYTHON,
    the venv made by Install Backend, and the project's .venv beside the add-on (a checkout)."""
    found = [Path(preference)] if preference else []
    if os.environ.get(ENV_VARIABLE):
        found.append(Path(os.environ[ENV_VARIABLE]))
    if user_venv is not None:
        found.append(venv_python(user_venv))
    found.append(venv_python(EXTENSION_ROOT / ".venv"))
    return found


def resolve(preference: str, user_venv: Path | None) -> Path | None:
    """The preference when set (even if missing: the caller reports it), else the first
    candidate that exists; None when there is none."""
    if preference:
        return Path(preference)
    return next((p for p in candidates(preference, user_venv) if p.is_file()), None)


def interpreter_problem(preference: str, blend_saved: bool, python: Path | None) -> str | None:
    """What is wrong with the interpreter about to run the backend, in words that say what to
    do; None when it can be started. `preference`: the preference as typed (a Blender path,
    `//` relative to the .blend); `python`: what it resolved to."""
    if preference.startswith("//") and not blend_saved:
        return (f"the Backend Python '{preference}' is relative to the .blend, which is not saved "
                "yet: save the file first, or give an absolute path in FaceAdapt's preferences")
    if python is None:
        return "no backend interpreter: set one in FaceAdapt's preferences or run Install Backend"
    if python.is_dir():
        return (f"the backend interpreter {python} is a folder: name the Python executable inside "
                f"it ({venv_python(python)}) in FaceAdapt's preferences")
    if not python.is_file():
        return (f"the backend interpreter {python} does not exist: fix FaceAdapt's preferences or "
                "run Install Backend")
    return None


@dataclass
class BackendStatus:
    python: Path | None
    ok: bool
    message: str
    cuda: bool = False


def check(python: Path | None, timeout: float = 120) -> BackendStatus:
    """Can `python` run the backend (torch importable)? Reports the device it would use."""
    if python is None:
        return BackendStatus(None, False, "no backend interpreter found: set one in the "
                             "preferences or run Install Backend")
    try:
        done = subprocess.run([str(python), "-c", CHECK_CODE], capture_output=True, text=True,
                              errors="replace", timeout=timeout)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return BackendStatus(python, False, f"{python} cannot be run: {exc}")
    return check_answer(python, done.returncode, done.stdout.splitlines(), done.stderr.splitlines())


def check_answer(python: Path, returncode: int, stdout: list[str], stderr: list[str]) -> BackendStatus:
    """What `CHECK_CODE` run by `python` says: exit code and output lines."""
    lines = [line for line in stdout if line.strip()]
    if returncode != 0 or not lines:
        last = ([line for line in stderr if line.strip()] or ["no output"])[-1].strip()
        return BackendStatus(python, False, f"{python} cannot import the backend's packages: {last}")
    try:
        info = json.loads(lines[-1])
        torch_version, cuda = str(info["torch"]), bool(info["cuda"])
    except (json.JSONDecodeError, TypeError, KeyError):
        return BackendStatus(python, False, f"{python} answered the check with {lines[-1]!r}")
    device = "CUDA" if cuda else "CPU"
    return BackendStatus(python, True, f"torch {torch_version} on {device}", cuda)
