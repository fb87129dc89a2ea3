"""The per-frame camera file of DESIGN.md from a Blender scene: where a camera sees the tracked
head on each frame, for `python -m backend bake-textures` (Bake for Camera).

The head's vertices are in head space and skinned wholly to the rig's head bone, whose rest
pose maps head space onto the armature's space; so head space -> world is the rig's world
matrix times the bone's pose matrix times its inverse rest matrix, and the camera file's pose
is that followed by the camera's world -> OpenCV camera transform. Moving the rig, keying the
head bone or animating the camera all show in the file.
"""

from __future__ import annotations

import bpy
import numpy as np

from ..backend.formats.camera_file import CameraFile
from .camera_conversion import intrinsics_from_blender_camera, opencv_pose_from_blender
from .head_builder import HEAD_BONE


def head_to_camera(rig_world: np.ndarray, bone_pose: np.ndarray, bone_rest: np.ndarray,
                   camera_world: np.ndarray) -> np.ndarray:
    """(4, 4) head space -> OpenCV camera of one frame, from the rig's matrix_world, the head
    bone's pose matrix (armature space) and rest matrix_local, and the camera's matrix_world."""
    head_world = rig_world @ bone_pose @ np.linalg.inv(bone_rest)
    return opencv_pose_from_blender(camera_world) @ head_world


def render_size(scene: bpy.types.Scene) -> tuple[int, int]:
    scale = scene.render.resolution_percentage / 100
    return round(scene.render.resolution_x * scale), round(scene.render.resolution_y * scale)


def camera_file(scene: bpy.types.Scene, rig: bpy.types.Object, camera: bpy.types.Object,
                scene_frames: dict[int, int]) -> CameraFile:
    """The camera file of `camera` seeing the head of `rig` at each source frame, played at the
    scene frame `scene_frames[source frame]`. Visits those frames (the scene's current frame is
    put back)."""
    data = camera.data
    if data.type != "PERSP":
        raise ValueError(f"the camera '{camera.name}' is {data.type.lower()}: textures are decoded "
                         "for perspective cameras")
    width, height = render_size(scene)
    intrinsics = intrinsics_from_blender_camera(data.lens, data.sensor_width, data.sensor_height,
                                                data.sensor_fit, data.shift_x, data.shift_y,
                                                width, height)
    rest = np.array(rig.data.bones[HEAD_BONE].matrix_local)
    current = scene.frame_current
    poses = {}
    try:
        for source, frame in scene_frames.items():
            scene.frame_set(frame)
            poses[source] = head_to_camera(np.array(rig.matrix_world),
                                           np.array(rig.pose.bones[HEAD_BONE].matrix), rest,
                                           np.array(camera.matrix_world))
    finally:
        scene.frame_set(current)
    return CameraFile(width, height, intrinsics, poses)
