"""Running a Blender-side program (`python -m blender_addon.<program>`) as a subprocess.

The backend never imports bpy (DESIGN.md): renders that must come from Blender run in their
own process with this interpreter, which has bpy installed as a module.
"""

from __future__ import annotations

import re
import subprocess
import sys

from backend.data_location import REPO_ROOT
from backend.errors import BackendError
from backend.events import EventSink


def run_blender_program(program: str, arguments: list[str], stage: str, sink: EventSink) -> None:
    """Run blender_addon.<program> with `arguments`, reporting its "frame i/F" lines on stderr
    as progress of `stage`. A cancelled backend (SIGTERM -> Cancelled) terminates the program;
    a failed program raises BackendError with the end of its stderr."""
    command = [sys.executable, "-m", f"blender_addon.{program}", *arguments]
    sink.log("running " + " ".join(command[1:]))
    # Blender prints a line per saved file on stdout: progress comes on stderr.
    process = subprocess.Popen(command, cwd=REPO_ROOT, stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE, text=True)
    assert process.stderr is not None
    tail: list[str] = []
    try:
        for line in process.stderr:
            match = re.fullmatch(r"frame (\d+)/(\d+)", line.strip())
            if match:
                sink.progress(stage, int(match[1]), int(match[2]))
            else:
                tail = [*tail[-30:], line.rstrip()]
        code = process.wait()
    finally:
        if process.poll() is None:  # cancelled while rendering: stop Blender too
            process.terminate()
            process.wait()
    if code != 0:
        raise BackendError(f"blender_addon.{program} failed (exit {code}): " + "\n".join(tail))
