"""A child process started as its own process group, and stopping all of it (plain Python, no bpy).

Stopping only the direct child is not enough: a wrapper interpreter, or a render the backend
started, would keep running and keep the inherited pipes open, so the reader never sees the
end. Stopping is two-step: a polite request (the backend traps SIGTERM, removes its temp
output and exits 130), then, after a grace period, a forced kill of the whole group.

POSIX: the child is a session leader (`start_new_session`), so its group id is its pid and
`killpg` reaches every process it started. Windows (untested here): the child gets its own
group (`CREATE_NEW_PROCESS_GROUP`); the request is CTRL_BREAK_EVENT to that group and the
forced stop is `taskkill /F /T`, which ends the child's whole process tree.
"""

from __future__ import annotations

import os
import signal
import subprocess
from typing import Any

STOP_GRACE_S = 5.0  # after the polite request, the group gets this long before the forced kill


def new_group_arguments() -> dict[str, Any]:
    """Popen keyword arguments that start the child as its own process group."""
    if os.name == "nt":
        return {"creationflags": subprocess.CREATE_NEW_PROCESS_GROUP}
    return {"start_new_session": True}


def signal_group(process: subprocess.Popen, force: bool) -> None:
    """Ask the child's whole process group to stop (SIGTERM), or kill it (force: SIGKILL).

    Harmless when the group has already ended.
    """
    try:
        if os.name == "nt":
            _signal_windows_group(process, force)
        else:
            os.killpg(process.pid, signal.SIGKILL if force else signal.SIGTERM)
    except (ProcessLookupError, PermissionError):
        pass  # the group has already ended (or its pid now belongs to someone else's process)


def _signal_windows_group(process: subprocess.Popen, force: bool) -> None:
    if not force:
        try:
            process.send_signal(signal.CTRL_BREAK_EVENT)  # type: ignore[attr-defined]
            return
        except OSError:
            pass  # no console shared with the child: only the forced stop can reach it
    subprocess.run(["taskkill", "/F", "/T", "/PID", str(process.pid)],
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
