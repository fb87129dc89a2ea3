"""What importing a results directory puts into a scene, computed without bpy.

`plan_import` turns results (read by the file-format core, backend/formats/results_dir.py)
and where their footage plays in the scene into plain arrays: the scene frame of every
tracked frame, the head's world matrix per frame, the camera's world matrix and settings.
`operators/import_results.py` and `blender_addon/scene_import.py` only write these into
Blender.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..backend.formats.errors import BadInput
from ..backend.formats.results_dir import TRACKING_NPZ, Results
from .camera_conversion import (
    OPENCV_TO_BLENDER_AXES,
    BlenderCamera,
    blender_camera_from_intrinsics,
)


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
    the camera is static and the head moves, as in the footage. BadInput naming the file and
    field when the results cannot be placed (a source size missing, a camera Blender cannot
    express).
    """
    first_pose = results.head_pose[0].astype(np.float64)
    # Head world H_t = C @ D @ P_t with camera matrix_world C and axes flip D; H_0 = identity.
    camera_world = np.linalg.inv(OPENCV_TO_BLENDER_AXES @ first_pose)
    head_world = camera_world @ OPENCV_TO_BLENDER_AXES @ results.head_pose.astype(np.float64)
    try:
        camera = blender_camera_from_intrinsics(results.intrinsics, results.width, results.height)
    except ValueError as exc:
        raise BadInput(f"{results.directory / TRACKING_NPZ}: field 'intrinsics': {exc}; "
                       "re-track the clip") from exc
    scene_frames = first_scene_frame_of_source_zero + results.frames.astype(np.int64)
    return ImportPlan(scene_frames, head_world, camera_world, camera)


def bone_basis(head_world: np.ndarray, armature_world: np.ndarray, bone_rest: np.ndarray) -> np.ndarray:
    """Pose-bone `matrix_basis` (F, 4, 4) that moves a head bone (rest `matrix_local` (4, 4) in
    armature space, parent unposed) so skinned head-space vertices land at `head_world` (F, 4, 4)
    of an armature placed at `armature_world` whose rest pose maps head space to armature space
    identically."""
    target = np.linalg.inv(armature_world) @ head_world  # desired deform in armature space
    return np.linalg.inv(bone_rest) @ target @ bone_rest
