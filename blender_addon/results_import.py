"""What importing a results directory puts into a scene, computed without bpy.

`plan_import` turns a results directory (DESIGN.md, schema 1) and where its footage plays in
the scene into plain arrays: the scene frame of every tracked frame, the head's world matrix
per frame, the camera's world matrix and settings. `operators/import_results.py` and
`blender_addon/scene_import.py` only write these into Blender.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from backend import protocol
from blender_addon.camera_conversion import (
    OPENCV_TO_BLENDER_AXES,
    BlenderCamera,
    blender_camera_from_intrinsics,
)


class ImportRefused(Exception):
    """The results cannot be imported onto this head; the message says why and what to do."""


@dataclass
class Results:
    directory: Path
    document: dict
    frames: np.ndarray  # (F,) int64 source frame indices
    vertices: np.ndarray  # (F, V, 3) head space
    head_pose: np.ndarray  # (F, 4, 4) head space -> OpenCV camera
    intrinsics: np.ndarray  # (3, 3)
    confidence: np.ndarray  # (F,)
    landmarks_fit: np.ndarray  # (F, 68, 2)
    topology_hash: str

    @property
    def width(self) -> int:
        return int(self.document["source"]["width"])

    @property
    def height(self) -> int:
        return int(self.document["source"]["height"])

    @property
    def footage(self) -> str:
        return str(self.document["source"]["path"])


def read_results(directory: str | Path) -> Results:
    """Read a results directory, refusing other schema versions and incomplete folders."""
    directory = Path(directory)
    summary = directory / protocol.RESULT_JSON
    if not summary.is_file():
        raise ImportRefused(f"{directory} is not a FaceAdapt results directory "
                            f"({protocol.RESULT_JSON} missing)")
    document = json.loads(summary.read_text())
    if document.get("schema") != protocol.SCHEMA_VERSION:
        raise ImportRefused(f"{summary} has schema {document.get('schema')}; this add-on reads "
                            f"schema {protocol.SCHEMA_VERSION}: re-track with this version")
    try:
        with np.load(directory / protocol.TRACKING_NPZ) as t:
            arrays = {k: t[k] for k in protocol.TRACKING_KEYS}
    except (OSError, KeyError, ValueError) as exc:
        raise ImportRefused(f"{directory / protocol.TRACKING_NPZ} is unreadable or incomplete "
                            f"({exc}); re-track") from exc
    return Results(directory=directory, document=document, frames=arrays["frames"],
                   vertices=arrays["vertices"], head_pose=arrays["head_pose"],
                   intrinsics=arrays["intrinsics"], confidence=arrays["confidence"],
                   landmarks_fit=arrays["landmarks_fit"],
                   topology_hash=str(document.get("topology_hash", "")))


def check_topology(results: Results, mesh_name: str, num_vertices: int, topology_hash: str) -> None:
    """Refuse results tracked on another head than the target mesh."""
    if results.vertices.shape[1] != num_vertices or results.topology_hash != topology_hash:
        raise ImportRefused(
            f"the results in {results.directory} were tracked on a head with "
            f"{results.vertices.shape[1]} vertices (topology {results.topology_hash}); "
            f"'{mesh_name}' has {num_vertices} vertices (topology {topology_hash or 'unknown'}). "
            "Select the head the clip was tracked with, or re-track with this head.")


@dataclass
class ImportPlan:
    scene_frames: np.ndarray  # (F,) int, scene frame showing each tracked frame
    head_world: np.ndarray  # (F, 4, 4) head space -> Blender world, per frame
    camera_world: np.ndarray  # (4, 4) Blender camera matrix_world (static)
    camera: BlenderCamera


def plan_import(results: Results, first_scene_frame_of_source_zero: int) -> ImportPlan:
    """Where everything goes. Source frame i plays at scene frame
    `first_scene_frame_of_source_zero + i` (a movie strip's `frame_start`).

    World space is chosen so the head sits at the origin, upright, at the first tracked frame;
    the camera is static and the head moves, as in the footage.
    """
    first_pose = results.head_pose[0].astype(np.float64)
    # Head world H_t = C @ D @ P_t with camera matrix_world C and axes flip D; H_0 = identity.
    camera_world = np.linalg.inv(OPENCV_TO_BLENDER_AXES @ first_pose)
    head_world = camera_world @ OPENCV_TO_BLENDER_AXES @ results.head_pose.astype(np.float64)
    camera = blender_camera_from_intrinsics(results.intrinsics, results.width, results.height)
    scene_frames = first_scene_frame_of_source_zero + results.frames.astype(np.int64)
    return ImportPlan(scene_frames, head_world, camera_world, camera)


def bone_basis(head_world: np.ndarray, armature_world: np.ndarray, bone_rest: np.ndarray) -> np.ndarray:
    """Pose-bone `matrix_basis` (F, 4, 4) that moves a head bone (rest `matrix_local` (4, 4) in
    armature space, parent unposed) so skinned head-space vertices land at `head_world` (F, 4, 4)
    of an armature placed at `armature_world` whose rest pose maps head space to armature space
    identically."""
    target = np.linalg.inv(armature_world) @ head_world  # desired deform in armature space
    return np.linalg.inv(bone_rest) @ target @ bone_rest
