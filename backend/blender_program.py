"""Running a Blender-side program (`blender_addon/<program>.py`) as its own process.

The backend never imports bpy (DESIGN.md): renders that must come from Blender run in a
Blender interpreter the user names ($FACEADAPT_BLENDER_PYTHON, a Python with `bpy` installed
as a module), or this interpreter when it has bpy (the development environment). The program
reports progress as protocol event lines on stderr (`protocol.event_line`), the same format
the backend itself prints with --events.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

from .data_location import REPO_ROOT
from .events import EventSink
from .formats import protocol
from .formats.errors import BackendError, BadInput

ENV_VARIABLE = "FACEADAPT_BLENDER_PYTHON"
LAUNCHER = REPO_ROOT / "blender_addon" / "run_program.py"


def blender_python() -> Path:
    """The interpreter that runs Blender-side programs; BadInput saying how to name one when
    there is none."""
    named = os.environ.get(ENV_VARIABLE)
    if named:
        if not Path(named).is_file():
            raise BadInput(f"${ENV_VARIABLE} names {named}, which does not exist; point it at a "
                           "Python interpreter with Blender's bpy module installed")
        return Path(named)
    if importlib.util.find_spec("bpy") is not None:
        return Path(sys.executable)
    raise BadInput("this command renders with Blender, and this backend environment has no "
                   f"bpy: set ${ENV_VARIABLE} to a Python with bpy installed (`pip install "
                   "bpy==5.0.1` in a Python 3.11 venv, or the project's .venv from `make venv`)")


def blender_program_command(program: str, arguments: list[str]) -> list[str]:
    """The command line running blender_addon/<program>.py with the Blender interpreter."""
    return [str(blender_python()), str(LAUNCHER), program, *arguments]


def build_extension(out_dir: Path) -> Path:
    """Build the extension zip into `out_dir` with Blender's own builder (build.py, run by the
    Blender interpreter, whose bpy carries the builder); returns the zip's path."""
    built = subprocess.run([str(blender_python()), "build.py", "--out", str(out_dir)], cwd=REPO_ROOT,
                           capture_output=True, text=True, errors="replace")
    if built.returncode != 0:
        raise BackendError(f"building the extension failed: {(built.stdout + built.stderr).strip()[-2000:]}")
    return next(Path(out_dir).glob("faceadapt-*.zip"))


def run_blender_program(program: str, arguments: list[str], stage: str, sink: EventSink) -> None:
    """Run blender_addon/<program>.py with `arguments`, forwarding its progress events as
    progress of `stage`. A cancelled backend (SIGTERM -> Cancelled) terminates the program;
    a failed program raises BackendError with the end of its stderr."""
    command = blender_program_command(program, arguments)
    sink.log("running " + " ".join(command[1:]))
    # Blender prints a line per saved file on stdout: progress comes on stderr.
    process = subprocess.Popen(command, cwd=REPO_ROOT, stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE, text=True, errors="replace")
    assert process.stderr is not None
    tail: list[str] = []
    try:
        for line in process.stderr:
            event = protocol.parse_event_line(line)
            if event is not None and event["event"] == protocol.EVENT_PROGRESS:
                sink.progress(stage, int(event["done"]), int(event["total"]))
            else:
                tail = [*tail[-30:], line.rstrip()]
        code = process.wait()
    finally:
        if process.poll() is None:  # cancelled while rendering: stop Blender too
            process.terminate()
            process.wait()
    if code != 0:
        raise BackendError(f"blender_addon/{program}.py failed (exit {code}): " + "\n".join(tail))
