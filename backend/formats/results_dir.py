"""The results directory (DESIGN.md "Results directory", schema version 1): write, read, and
check against a target head. The only implementation of the format: the backend writes and
scores with it, the add-on imports with it.

result.json   schema, source, model, topology_hash, intrinsics, settings, timings, metrics,
              warnings; written last: its presence marks a complete directory
tracking.npz  TRACKING_KEYS (+ optional weights/weight_names, latent)
mesh.npz      MESH_KEYS
textures/<view>/NNNNNN.png, cache.pc2
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from . import protocol
from .atomic import DirectoryKind
from .errors import BadInput
from .head_file import HeadAsset
from .npz_arrays import read_npz
from .protocol import NUM_LANDMARKS

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


def frame_label(frame_index: int) -> str:
    """File stem of a per-frame file (textures/<view>/NNNNNN.png): the source frame index."""
    return f"{frame_index:06d}"


class TopologyMismatch(BadInput):
    """Results tracked on another head than the one they are applied to."""


@dataclass
class TrackingArrays:
    """The arrays of tracking.npz; shapes in TRACKING_KEYS."""

    frames: np.ndarray
    vertices: np.ndarray
    head_pose: np.ndarray
    intrinsics: np.ndarray
    confidence: np.ndarray
    landmarks_2d: np.ndarray
    landmarks_conf: np.ndarray
    landmarks_fit: np.ndarray
    optional: dict[str, np.ndarray] = field(default_factory=dict)

    def as_dict(self) -> dict[str, np.ndarray]:
        # copy=False: a long clip's vertices already in float32 are written as they are.
        arrays = {
            "frames": self.frames.astype(np.int64, copy=False),
            "vertices": self.vertices.astype(np.float32, copy=False),
            "head_pose": self.head_pose.astype(np.float32, copy=False),
            "intrinsics": self.intrinsics.astype(np.float32, copy=False),
            "confidence": self.confidence.astype(np.float32, copy=False),
            "landmarks_2d": self.landmarks_2d.astype(np.float32, copy=False),
            "landmarks_conf": self.landmarks_conf.astype(np.float32, copy=False),
            "landmarks_fit": self.landmarks_fit.astype(np.float32, copy=False),
        }
        arrays.update(self.optional)
        for key, value in arrays.items():
            if value.dtype.kind == "f" and not np.isfinite(value).all():
                raise ValueError(f"tracking array {key!r} contains NaN or inf")
        return arrays


RESULTS_DIRECTORY = DirectoryKind(
    "FaceAdapt results directory", RESULT_JSON, "schema",
    frozenset({RESULT_JSON, TRACKING_NPZ, MESH_NPZ, TEXTURES_DIR, POINT_CACHE}))


def write_arrays(directory: Path, tracking: TrackingArrays, head: HeadAsset) -> None:
    """tracking.npz and mesh.npz into `directory` (a results directory being written)."""
    np.savez(directory / TRACKING_NPZ, **tracking.as_dict())
    np.savez(directory / MESH_NPZ, faces=head.faces.astype(np.int32),
             uv=head.uv.astype(np.float32), uv_faces=head.uv_faces.astype(np.int32),
             landmark_vertex=head.landmark_vertex.astype(np.int32),
             landmark_mask=head.landmark_mask.astype(bool),
             topology_hash=np.array(head.topology_hash))


def write_summary(directory: Path, summary: dict[str, Any], head: HeadAsset) -> None:
    """result.json, written last: its presence marks a complete results directory."""
    document = {"schema": protocol.SCHEMA_VERSION, "topology_hash": head.topology_hash, **summary}
    # allow_nan=False: JSON has no NaN/Infinity; a reader in another language would refuse them.
    (directory / RESULT_JSON).write_text(json.dumps(document, indent=1, allow_nan=False) + "\n")


@dataclass
class Results:
    """A results directory as read: result.json, and the arrays of tracking.npz and mesh.npz
    (shapes in TRACKING_KEYS and MESH_KEYS, checked)."""

    directory: Path
    document: dict[str, Any]
    tracking: dict[str, np.ndarray]
    mesh: dict[str, np.ndarray]

    @property
    def frames(self) -> np.ndarray:
        return self.tracking["frames"]

    @property
    def vertices(self) -> np.ndarray:
        return self.tracking["vertices"]

    @property
    def head_pose(self) -> np.ndarray:
        return self.tracking["head_pose"]

    @property
    def intrinsics(self) -> np.ndarray:
        return self.tracking["intrinsics"]

    @property
    def confidence(self) -> np.ndarray:
        return self.tracking["confidence"]

    @property
    def landmarks_fit(self) -> np.ndarray:
        return self.tracking["landmarks_fit"]

    @property
    def topology_hash(self) -> str:
        return str(self.document.get("topology_hash", ""))

    @property
    def width(self) -> int:
        return self._source_pixels("width")

    @property
    def height(self) -> int:
        return self._source_pixels("height")

    def _source_pixels(self, name: str) -> int:
        value = self._source_field(name)
        if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            raise BadInput(f"{self.directory / RESULT_JSON}: field 'source.{name}' must be a "
                           f"positive number of pixels, got {value!r}; re-track the clip")
        return value

    @property
    def footage(self) -> str:
        return str(self._source_field("path"))

    def _source_field(self, name: str) -> Any:
        """result.json's source.<name>, BadInput naming it when absent; checked on use rather
        than on read, as scoring tracking arrays needs no footage."""
        source = self.document.get("source")
        if not isinstance(source, dict) or name not in source:
            raise BadInput(f"{self.directory / RESULT_JSON}: field 'source.{name}' is missing; "
                           "re-track the clip")
        return source[name]


def _check_tracking(path: Path, t: dict[str, np.ndarray]) -> None:
    """Shapes, lengths and finiteness of tracking.npz (optional weights, weight_names and
    latent included when present), frames distinct and increasing; BadInput naming the field."""
    if t["frames"].ndim != 1 or len(t["frames"]) == 0:
        raise BadInput(f"{path} holds no frames; re-track the clip")
    frames = len(t["frames"])
    # Importers key shape keys and scene frames by these: they must be distinct and ordered.
    if (t["frames"].dtype.kind not in "iu" or t["frames"].min() < 0
            or (np.diff(t["frames"]) <= 0).any()):
        raise BadInput(f"{path}: field 'frames' must be integer source frame indices >= 0 in "
                       "increasing order; re-track the clip")
    expected = {"vertices": (frames, None, 3), "head_pose": (frames, 4, 4), "intrinsics": (3, 3),
                "confidence": (frames,), "landmarks_2d": (frames, NUM_LANDMARKS, 2),
                "landmarks_conf": (frames, NUM_LANDMARKS),
                "landmarks_fit": (frames, NUM_LANDMARKS, 2)}
    if "weights" in t or "weight_names" in t:
        for present, absent in (("weights", "weight_names"), ("weight_names", "weights")):
            if absent not in t:
                raise BadInput(f"{path}: field '{present}' comes without '{absent}'; "
                               "re-track the clip")
        names = t["weight_names"]
        if names.ndim != 1:
            raise BadInput(f"{path}: field 'weight_names' must be (K,), got {names.shape}; "
                           "re-track the clip")
        if t["weights"].ndim == 2 and t["weights"].shape[1] != len(names):
            raise BadInput(f"{path}: field 'weight_names' names {len(names)} channels for "
                           f"{t['weights'].shape[1]} weights; re-track the clip")
        expected["weights"] = (frames, len(names))
    if "latent" in t:
        expected["latent"] = (frames, None)
    for key, shape in expected.items():
        got = t[key].shape
        if len(got) != len(shape) or any(s is not None and s != g for s, g in zip(shape, got, strict=True)):
            raise BadInput(f"{path}: field '{key}' must be {shape} for {frames} frames, got {got}; "
                           "re-track the clip")
        if not np.isfinite(t[key]).all():
            raise BadInput(f"{path}: field '{key}' contains NaN or inf; re-track the clip")
    _check_rigid(path, t["head_pose"])


# float32 poses of unit-scale rotations are orthonormal to ~1e-6; 1e-3 only refuses poses that
# scale, shear or mirror the head (or cannot be inverted), which the importer would bake in.
_RIGID_TOLERANCE = 1e-3


def _check_rigid(path: Path, head_pose: np.ndarray) -> None:
    """head_pose (F, 4, 4) must be rigid: a rotation (orthonormal, determinant +1) and a
    translation, bottom row (0, 0, 0, 1); BadInput naming the first frame that is not."""
    rotation = head_pose[:, :3, :3].astype(np.float64)
    orthonormal = np.abs(rotation @ np.swapaxes(rotation, 1, 2) - np.eye(3)).max(axis=(1, 2))
    bad = ((orthonormal > _RIGID_TOLERANCE) | (np.linalg.det(rotation) <= 0)
           | (np.abs(head_pose[:, 3] - [0, 0, 0, 1]).max(axis=1) > _RIGID_TOLERANCE))
    if bad.any():
        row = int(np.argmax(bad))
        raise BadInput(f"{path}: field 'head_pose' row {row} is not a rigid transform (a "
                       "rotation and a translation; singular, scaled or mirrored poses cannot be "
                       "imported); re-track the clip")


def _check_mesh(path: Path, mesh: dict[str, np.ndarray], num_vertices: int) -> None:
    """mesh.npz's faces and landmark vertices index the V vertices tracking.npz poses (and
    uv_faces the uv rows); BadInput naming the field."""
    num_uv = len(mesh["uv"]) if mesh["uv"].ndim == 2 and mesh["uv"].shape[1] == 2 else None
    if num_uv is None:
        raise BadInput(f"{path}: field 'uv' must be (U, 2), got {mesh['uv'].shape}; re-track the clip")
    for key, shape, bound in (("faces", (None, 3), num_vertices), ("uv_faces", (None, 3), num_uv),
                              ("landmark_vertex", (NUM_LANDMARKS,), num_vertices)):
        value = mesh[key]
        if (value.dtype.kind not in "iu" or value.ndim != len(shape)
                or any(s is not None and s != g for s, g in zip(shape, value.shape, strict=True))):
            raise BadInput(f"{path}: field '{key}' must be integer {shape}, got {value.dtype} "
                           f"{value.shape}; re-track the clip")
        if value.size and (value.min() < 0 or value.max() >= bound):
            raise BadInput(f"{path}: field '{key}' indexes beyond the {bound} rows it refers to "
                           "(vertices of tracking.npz, or uv); re-track the clip")


def read_results(directory: Path) -> Results:
    """Read a results directory, checking the schema version, the arrays' shapes and
    finiteness, and that result.json and mesh.npz name the same topology; BadInput naming
    the file and field it refuses."""
    directory = Path(directory)
    if not directory.is_dir():
        raise BadInput(f"results {directory} do not exist; pass a directory written by "
                       "`python -m backend track`")
    path = directory / RESULT_JSON
    if not path.is_file():
        raise BadInput(f"{directory} is not a FaceAdapt results directory ({RESULT_JSON} missing)")
    try:
        document = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise BadInput(f"{path} cannot be read as JSON ({exc}); re-track the clip") from exc
    if not isinstance(document, dict) or document.get("schema") != protocol.SCHEMA_VERSION:
        schema = document.get("schema") if isinstance(document, dict) else None
        raise BadInput(f"{path}: schema {schema}, this FaceAdapt reads schema "
                       f"{protocol.SCHEMA_VERSION}; re-track with this version")
    if not isinstance(document.get("source", {}), dict):
        raise BadInput(f"{path}: field 'source' must be an object (path, width, height, ...), got "
                       f"{json.dumps(document['source'])}; re-track the clip")
    tracking = read_npz(directory / TRACKING_NPZ, "results file", TRACKING_KEYS, "re-track the clip")
    _check_tracking(directory / TRACKING_NPZ, tracking)
    mesh = read_npz(directory / MESH_NPZ, "results file", MESH_KEYS, "re-track the clip")
    _check_mesh(directory / MESH_NPZ, mesh, tracking["vertices"].shape[1])
    if str(mesh["topology_hash"]) != str(document.get("topology_hash", mesh["topology_hash"])):
        raise BadInput(f"{directory}: {MESH_NPZ} (topology {mesh['topology_hash']}) and "
                       f"{RESULT_JSON} (topology {document.get('topology_hash')}) disagree; re-track")
    document.setdefault("topology_hash", str(mesh["topology_hash"]))
    return Results(directory, document, tracking, mesh)


def check_topology(results: Results, target: str, num_vertices: int, topology_hash: str) -> None:
    """Refuse results tracked on another head than `target` (a head file or a Blender mesh,
    with its vertex count and topology hash): TopologyMismatch saying what to do."""
    if results.vertices.shape[1] != num_vertices or results.topology_hash != topology_hash:
        raise TopologyMismatch(
            f"the results in {results.directory} were tracked on a head with "
            f"{results.vertices.shape[1]} vertices (topology {results.topology_hash}); "
            f"{target} has {num_vertices} vertices (topology {topology_hash or 'unknown'}). "
            f"Use the head the clip was tracked with (result.json model: "
            f"{results.document.get('model')}), or re-track with this head.")
