"""How a tracked performance becomes Blender geometry, computed without bpy.

Four modes, chosen in the panel:
- `arkit`: the head's 52 ARKit shape keys keyed from the tracked weights; the jaw and gaze keys
  through the jaw and eye bones (face_controls.py). Small and editable; approximate: its
  reconstruction error against the tracked vertices is measured and reported.
- `shape-keys`: one shape key per frame, switched on at its frame. Exact; grows with the clip.
- `point-cache`: the vertices in a `.pc2` file read by a Mesh Cache modifier. Exact; the .blend
  stays small, the file travels beside it.
- `compact`: a few dozen shape keys from PCA of the tracked vertices with per-frame weights.
  Error within a tolerance, reported.

In every mode the jaw and eye bones are keyed from the tracked weights (when the results have
them); in the exact modes each driven key also gets a base equal to what its driver reads, so
the bones add nothing to the tracked geometry until an animator poses them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..backend.formats.errors import BadInput
from ..backend.formats.results_dir import TRACKING_NPZ, Results
from .compact_basis import CompactBasis, fit_compact_basis
from .face_controls import bone_angles, driven_values

GEOMETRY_MODES = {
    "arkit": ("ARKit Curves", "the head's 52 ARKit shape keys keyed from the tracked weights, jaw "
              "and eyes through their bones (small, editable; approximate)"),
    "shape-keys": ("Shape Key per Frame", "one shape key per tracked frame (exact; large for long "
                   "clips)"),
    "point-cache": ("Point Cache", "the tracked vertices in a .pc2 file beside the results, read "
                    "by a Mesh Cache modifier (exact; for long clips)"),
    "compact": ("Compact Basis", "a few dozen shape keys from PCA of the tracked vertices, with "
                "per-frame weights (error within a tolerance)"),
}
DEFAULT_MODE = "arkit"
COMPACT_MAX_COMPONENTS = 48
COMPACT_TOLERANCE_M = 0.0002  # 0.2 mm, below what any tracker resolves on footage
# Per-frame shape keys are evaluated on every frame whatever their value: playback slows with
# their number (bench import, 10,000 vertices: 14 frames/s at 1,000 keys, 0.6 at 5,000, against
# 106-118 for a point cache). Past this many vertex-frames (250 frames of 10,000 vertices, about
# 55 frames/s) the point cache is the exact mode to recommend.
SHAPE_KEY_BUDGET_VERTEX_FRAMES = 2_500_000
ERROR_CHUNK_FRAMES = 256  # frames per block when measuring reconstruction error


@dataclass
class GeometryPlan:
    """What one mode writes, for F tracked frames."""

    mode: str
    key_values: dict[str, np.ndarray]  # shape key name -> (F,) value keyed per frame
    bone_angles: dict[tuple[str, str], np.ndarray]  # (bone, "ROT_X"/"ROT_Z") -> (F,) radians
    bases: dict[str, np.ndarray]  # driven ARKit key -> (F,) base (face_controls.DrivenKey)
    compact: CompactBasis | None = None
    error_mean_m: float = 0.0  # reconstruction error against the tracked vertices, metres
    error_max_m: float = 0.0
    notes: list[str] = field(default_factory=list)

    def describe(self) -> str:
        name = GEOMETRY_MODES[self.mode][0]
        if self.error_max_m == 0.0:
            return f"{name} (exact)"
        return (f"{name}: reconstruction error mean {self.error_mean_m * 1000:.3f} mm, max "
                f"{self.error_max_m * 1000:.3f} mm")


def recommended_mode(frames: int, vertices: int) -> str:
    """The exact mode that keeps playback and the .blend reasonable for this clip: per-frame
    shape keys while within SHAPE_KEY_BUDGET_VERTEX_FRAMES, a point cache past it."""
    return "shape-keys" if frames * vertices <= SHAPE_KEY_BUDGET_VERTEX_FRAMES else "point-cache"


def plan_geometry(mode: str, results: Results, rest: np.ndarray, shapes: dict[str, np.ndarray],
                  has_controls: bool) -> GeometryPlan:
    """The geometry of `results` in `mode` for a head whose rest vertices are `rest` (V, 3) and
    whose ARKit shape keys are `shapes` (name -> delta (V, 3) from rest), metres. `has_controls`:
    the head's rig has the jaw and eye bones (heads made before them do not: their jaw and gaze
    keys are keyed directly). BadInput when the mode needs weights the results lack."""
    if mode not in GEOMETRY_MODES:
        raise BadInput(f"unknown geometry mode {mode!r}: use one of {', '.join(GEOMETRY_MODES)}")
    weights, names = _weights(results)
    angles = bone_angles(weights, names) if weights is not None and has_controls else {}
    driven = driven_values(angles) if angles else {}
    if mode == "arkit":
        if weights is None:
            raise BadInput(f"{results.directory / TRACKING_NPZ} has no ARKit weights (its tracker "
                           "does not solve them): import as per-frame shape keys, point cache or "
                           "compact basis")
        values = {}
        for i, name in enumerate(names):
            if name not in shapes:
                continue
            values[name] = driven[name] if name in driven else weights[:, i].astype(np.float64)
        unknown = sorted(set(names) - set(shapes))
        plan = GeometryPlan(mode, {k: v for k, v in values.items() if k not in driven}, angles,
                            {k: np.zeros(len(weights)) for k in driven})
        if unknown:
            plan.notes.append(f"weights without a shape key on this head: {', '.join(unknown)}")
        plan.error_mean_m, plan.error_max_m = _blend_error(results.vertices, rest, shapes, values)
        return plan
    plan = GeometryPlan(mode, {}, angles, {k: v for k, v in driven.items() if k in shapes})
    if mode == "compact":
        basis = fit_compact_basis(results.vertices, rest, COMPACT_MAX_COMPONENTS,
                                  COMPACT_TOLERANCE_M)
        plan.compact = basis
        plan.error_mean_m, plan.error_max_m = basis.mean_error, basis.max_error
    return plan


def _weights(results: Results) -> tuple[np.ndarray | None, list[str]]:
    if "weights" not in results.tracking:
        return None, []
    return (results.tracking["weights"].astype(np.float64),
            [str(n) for n in results.tracking["weight_names"]])


def _blend_error(vertices: np.ndarray, rest: np.ndarray, shapes: dict[str, np.ndarray],
                 values: dict[str, np.ndarray]) -> tuple[float, float]:
    """Mean and max vertex distance (m) between the tracked vertices (F, V, 3) and the head's
    rest plus its shapes at `values`, in blocks of frames (a 5,000-frame clip of a 10,000-vertex
    head never needs a second full copy)."""
    names = sorted(values)
    if not names:
        distances = np.linalg.norm(vertices - rest, axis=-1)
        return float(distances.mean()), float(distances.max())
    deltas = np.stack([shapes[n].reshape(-1) for n in names]).astype(np.float32)  # (K, 3V)
    weights = np.stack([values[n] for n in names], axis=1).astype(np.float32)  # (F, K)
    total, largest = 0.0, 0.0
    for start in range(0, len(vertices), ERROR_CHUNK_FRAMES):
        block = slice(start, start + ERROR_CHUNK_FRAMES)
        blended = rest.reshape(-1).astype(np.float32) + weights[block] @ deltas
        distances = np.linalg.norm((vertices[block].reshape(len(blended), -1, 3)
                                    - blended.reshape(len(blended), -1, 3)), axis=-1)
        total += float(distances.sum())
        largest = max(largest, float(distances.max()))
    return total / (len(vertices) * vertices.shape[1]), largest

