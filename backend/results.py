"""The results directory (DESIGN.md "Results directory", schema version 1): write and read."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from backend import protocol
from backend.errors import BadInput
from backend.heads.head_asset import HeadAsset


@dataclass
class TrackingArrays:
    """The arrays of tracking.npz; shapes in backend.protocol.TRACKING_KEYS."""

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
        arrays = {
            "frames": self.frames.astype(np.int64),
            "vertices": self.vertices.astype(np.float32),
            "head_pose": self.head_pose.astype(np.float32),
            "intrinsics": self.intrinsics.astype(np.float32),
            "confidence": self.confidence.astype(np.float32),
            "landmarks_2d": self.landmarks_2d.astype(np.float32),
            "landmarks_conf": self.landmarks_conf.astype(np.float32),
            "landmarks_fit": self.landmarks_fit.astype(np.float32),
        }
        arrays.update(self.optional)
        for key, value in arrays.items():
            if value.dtype.kind == "f" and not np.isfinite(value).all():
                raise ValueError(f"tracking array {key!r} contains NaN or inf")
        return arrays


def refuse_existing(out: Path, overwrite: bool) -> None:
    if Path(out).exists() and not overwrite:
        raise BadInput(f"--out {out} already exists; pass --overwrite to replace it or choose "
                       "another directory")


def write_arrays(directory: Path, tracking: TrackingArrays, head: HeadAsset) -> None:
    """tracking.npz and mesh.npz into `directory` (a results directory being written)."""
    np.savez(directory / protocol.TRACKING_NPZ, **tracking.as_dict())
    np.savez(directory / protocol.MESH_NPZ, faces=head.faces.astype(np.int32),
             uv=head.uv.astype(np.float32), uv_faces=head.uv_faces.astype(np.int32),
             landmark_vertex=head.landmark_vertex.astype(np.int32),
             landmark_mask=head.landmark_mask.astype(bool),
             topology_hash=np.array(head.topology_hash))


def write_summary(directory: Path, summary: dict[str, Any], head: HeadAsset) -> None:
    """result.json, written last: its presence marks a complete results directory."""
    document = {"schema": protocol.SCHEMA_VERSION, "topology_hash": head.topology_hash, **summary}
    (directory / protocol.RESULT_JSON).write_text(json.dumps(document, indent=1) + "\n")


def read_results(directory: Path) -> tuple[dict[str, Any], dict[str, np.ndarray], dict[str, np.ndarray]]:
    """(result.json, tracking arrays, mesh arrays), checking the schema version."""
    directory = Path(directory)
    path = directory / protocol.RESULT_JSON
    if not path.is_file():
        raise BadInput(f"{directory} is not a FaceAdapt results directory (no {protocol.RESULT_JSON})")
    document = json.loads(path.read_text())
    if document.get("schema") != protocol.SCHEMA_VERSION:
        raise BadInput(f"{path}: schema {document.get('schema')}, this FaceAdapt reads "
                       f"{protocol.SCHEMA_VERSION}; re-track with this version")
    with np.load(directory / protocol.TRACKING_NPZ) as t, np.load(directory / protocol.MESH_NPZ) as m:
        return document, {k: t[k] for k in t.files}, {k: m[k] for k in m.files}
