"""The contract between the Blender add-on and the backend process (stdlib only).

Both sides import this module and nothing else of each other: event kinds written as JSON
lines on stdout, the results-directory layout, its schema version, and the head-file schema.
See DESIGN.md ("Process boundary", "Results directory").
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

SCHEMA_VERSION = 1

# --- events (one JSON object per stdout line with --events) -----------------------------
EVENT_PROGRESS = "progress"  # stage, done, total, eta_s
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

# --- results directory -------------------------------------------------------------------
RESULT_JSON = "result.json"
TRACKING_NPZ = "tracking.npz"
MESH_NPZ = "mesh.npz"
TEXTURES_DIR = "textures"
PROJECTED_TEXTURES = "projected"
POINT_CACHE = "cache.pc2"

TRACKING_KEYS = (
    "frames",  # (F,) int64, 0-based source frame indices
    "vertices",  # (F, V, 3) float32, head space, metres
    "head_pose",  # (F, 4, 4) float32, head space -> camera space (OpenCV axes)
    "intrinsics",  # (3, 3) float32, pixels of the source footage
    "confidence",  # (F,) float32, 0 = untracked (values held from the nearest tracked frame)
    "landmarks_2d",  # (F, 68, 2) float32, detected, pixels
    "landmarks_conf",  # (F, 68) float32, detector confidence in [0, 1]
    "landmarks_fit",  # (F, 68, 2) float32, the fitted head's landmarks projected, pixels
)
MESH_KEYS = ("faces", "uv", "uv_faces", "landmark_vertex", "landmark_mask", "topology_hash")

# --- head file (export-head, --head PATH) ------------------------------------------------
HEAD_REQUIRED_KEYS = (
    "vertices",  # (V, 3) float32, head space, metres
    "faces",  # (T, 3) int32
    "uv",  # (U, 2) float32, [0, 1], origin bottom-left (Blender)
    "uv_faces",  # (T, 3) int32
    "blendshapes",  # (K, V, 3) float32 deltas, metres
    "blendshape_names",  # (K,) str, ARKit spelling
    "landmark_vertex",  # (68,) int32, iBUG-68 order
    "landmark_mask",  # (68,) bool, False where the head cannot place the point
    "face_region",  # (V,) bool
)
HEAD_OPTIONAL_KEYS = ("albedo", "neck_pivot")  # (H, W, 3) uint8; (3,) float32

NUM_LANDMARKS = 68

# --- rendered clips: domain choices of blender_addon.render_clip (--light, --background)
RENDER_LIGHTS = ("coloured", "studio", "hard", "environment")
RENDER_BACKGROUNDS = ("room", "plain", "world")
# what the head does (performance.npz) and what the tracker should recover
PERFORMANCE_KEYS = (
    "weights",  # (F, K) float32 in [0, 1]
    "weight_names",  # (K,) str, channels of the head rendered
    "head_motion",  # (F, 4, 4) float64, rigid, head space -> world (the rest head's space)
    "fps",  # () float64
)
TRUTH_KEYS = (
    "frames",  # (F,) int64, 0-based frame indices
    "vertices",  # (F, V, 3) float32, head space
    "head_pose",  # (F, 4, 4) float32, head space -> OpenCV camera
    "intrinsics",  # (3, 3) float32
    "weights",  # (F, K) float32, with weight_names (K,)
    "weight_names",
    "landmarks_2d",  # (F, 68, 2) float32, projected landmark vertices (all 68, masked or not)
    "fps", "width", "height",
)


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


def topology_hash(num_vertices: int, triangles_int32: bytes, corner_uv_float32: bytes) -> str:
    """Identifies a head's topology and UV layout: vertex count, the triangle list as
    little-endian int32 (T x 3, row-major) and the UV of every triangle corner as little-endian
    float32 (T x 3 x 2), as Blender stores UVs per face corner; 16 hex digits of SHA-256.
    Results carry it, so textures are never applied to a head with another layout."""
    digest = hashlib.sha256()
    digest.update(str(int(num_vertices)).encode())
    digest.update(triangles_int32)
    digest.update(corner_uv_float32)
    return digest.hexdigest()[:16]


def frames_label(frame_index: int) -> str:
    """File stem of a per-frame file (textures/<view>/NNNNNN.png): the source frame index."""
    return f"{frame_index:06d}"
