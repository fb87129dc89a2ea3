"""The process protocol (stdlib only): event kinds written as JSON lines, error kinds and
exit codes, the results schema version. The backend prints these events on stdout with
--events; Blender-side programs print progress events on stderr; the add-on and the backend
read them with `parse_event_line`. See DESIGN.md ("Process boundary").
"""

from __future__ import annotations

import json
from typing import Any

SCHEMA_VERSION = 1

# --- events (one JSON object per stdout line with --events) -----------------------------
EVENT_PROGRESS = "progress"  # stage, done, total, eta_s, optionally values (name -> number)
EVENT_LOG = "log"  # message
EVENT_WARNING = "warning"  # message
EVENT_ERROR = "error"  # kind, message
EVENT_RESULT = "result"  # path
EVENT_KINDS = (EVENT_PROGRESS, EVENT_LOG, EVENT_WARNING, EVENT_ERROR, EVENT_RESULT)

ERROR_BAD_INPUT = "bad_input"
ERROR_NO_FACE = "no_face"
ERROR_INTERNAL = "internal"
ERROR_CANCELLED = "cancelled"
ERROR_KINDS = (ERROR_BAD_INPUT, ERROR_NO_FACE, ERROR_INTERNAL, ERROR_CANCELLED)

# Exit codes of the backend process, one per error kind; 0 only with a result event.
EXIT_CODES = {ERROR_BAD_INPUT: 2, ERROR_NO_FACE: 3, ERROR_INTERNAL: 4, ERROR_CANCELLED: 130}

NUM_LANDMARKS = 68  # iBUG-68 order everywhere (DESIGN.md conventions)


def event_line(event_kind: str, /, **fields: Any) -> str:
    """One event as the JSON line the backend prints with --events."""
    if event_kind not in EVENT_KINDS:
        raise ValueError(f"unknown event kind {event_kind!r}")
    return json.dumps({"event": event_kind, **fields}, separators=(",", ":"))


def parse_event_line(line: str) -> dict[str, Any] | None:
    """The event in one stdout line, or None for lines that are not events (library banners)."""
    line = line.strip()
    if not line.startswith("{"):
        return None
    try:
        obj = json.loads(line)
    except json.JSONDecodeError:
        return None
    if not isinstance(obj, dict) or obj.get("event") not in EVENT_KINDS:
        return None
    return obj
