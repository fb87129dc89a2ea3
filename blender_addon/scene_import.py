"""Writing an ImportPlan into Blender: per-frame shape keys with switching F-curves, head-bone
keyframes, and a camera with the clip's intrinsics and the footage as its background.

Re-importing replaces what an earlier import made (keys named `fa_NNNNNN`, the actions, the
camera). If anything fails, the changes made so far are undone, so the scene is as before.
"""

from __future__ import annotations

import bpy
import numpy as np
from mathutils import Matrix

from ..backend.formats.results_dir import Results
from .head_builder import HEAD_BONE
from .keyframes import new_channelbag, set_keys, set_transform_keys
from .results_import import ImportPlan, bone_basis

FRAME_KEY_PREFIX = "fa_"
CAMERA_NAME = "FaceAdapt Camera"
ACTION_TAG = "faceadapt_import"  # custom property marking actions an import made


def frame_key_name(source_frame: int) -> str:
    return f"{FRAME_KEY_PREFIX}{source_frame:06d}"


def import_into_scene(context: bpy.types.Context, head: bpy.types.Object, results: Results,
                      plan: ImportPlan, warnings: list[str],
                      camera_name: str = CAMERA_NAME) -> bpy.types.Object:
    """Apply `plan` to `head` (a FaceAdapt head mesh parented to its rig); returns the camera,
    `camera_name` (an earlier camera of that name is replaced). Problems that do not stop the
    import are appended to `warnings`."""
    rig = head.parent
    if rig is None or rig.type != "ARMATURE" or HEAD_BONE not in rig.pose.bones:
        raise ValueError(f"'{head.name}' is not parented to a FaceAdapt rig with a '{HEAD_BONE}' "
                         "bone: add the head with Add FaceAdapt Head")
    undo: list = []
    try:
        replaced = _set_aside_previous_import(head, undo)
        _frame_shape_keys(head, results, plan, undo)
        _head_bone_keys(rig, plan, undo)
        camera = _camera(context, results, plan, undo, warnings, camera_name)
    except Exception:
        for step in reversed(undo):
            step()
        raise
    for key in replaced:
        head.shape_key_remove(key)
    for action in [a for a in bpy.data.actions if a.get(ACTION_TAG) and a.users == 0]:
        bpy.data.actions.remove(action)
    scene = context.scene
    scene.frame_start = int(plan.scene_frames.min())
    scene.frame_end = int(plan.scene_frames.max())
    return camera


def _set_aside_previous_import(head: bpy.types.Object, undo: list) -> list:
    """Rename an earlier import's frame keys out of the way; removed only once the new import
    succeeded (so a failure restores them)."""
    keys = head.data.shape_keys
    old = [k for k in keys.key_blocks if k.name.startswith(FRAME_KEY_PREFIX)] if keys else []
    names = [k.name for k in old]
    for key in old:
        key.name = "replaced_" + key.name

    def restore() -> None:
        for key, name in zip(old, names, strict=True):
            key.name = name

    undo.append(restore)
    return old


def _frame_shape_keys(head: bpy.types.Object, results: Results, plan: ImportPlan,
                      undo: list) -> None:
    keys_before = len(head.data.shape_keys.key_blocks) if head.data.shape_keys else 0
    if head.data.shape_keys is None:
        head.shape_key_add(name="Basis", from_mix=False)

    def remove_keys() -> None:
        blocks = head.data.shape_keys.key_blocks
        for key in list(blocks)[max(keys_before, 1):]:
            head.shape_key_remove(key)

    undo.append(remove_keys)
    names = []
    for source_frame, vertices in zip(results.frames, results.vertices, strict=True):
        key = head.shape_key_add(name=frame_key_name(int(source_frame)), from_mix=False)
        key.data.foreach_set("co", vertices.astype(np.float32).ravel())
        key.value = 0.0
        names.append(key.name)

    shape_keys = head.data.shape_keys
    animation = shape_keys.animation_data_create()
    previous = animation.action
    action, channelbag = new_channelbag(shape_keys, "KEY", f"{head.name} FaceAdapt Frames")
    action[ACTION_TAG] = True

    def restore_action() -> None:
        animation.action = previous
        bpy.data.actions.remove(action)

    undo.append(restore_action)
    for name, frame in zip(names, plan.scene_frames, strict=True):
        # On exactly at its scene frame, off one frame before and after (constant steps).
        curve = channelbag.fcurves.new(f'key_blocks["{name}"].value')
        set_keys(curve, [frame - 1, frame, frame + 1], [0.0, 1.0, 0.0], "CONSTANT")


def _head_bone_keys(rig: bpy.types.Object, plan: ImportPlan, undo: list) -> None:
    bone = rig.data.bones[HEAD_BONE]
    rest = np.array(bone.matrix_local)
    basis = bone_basis(plan.head_world, np.array(rig.matrix_world), rest)
    previous = rig.animation_data.action if rig.animation_data else None
    action, channelbag = new_channelbag(rig, "OBJECT", f"{rig.name} FaceAdapt Head")
    action[ACTION_TAG] = True

    def restore() -> None:
        rig.animation_data.action = previous
        bpy.data.actions.remove(action)

    undo.append(restore)
    set_transform_keys(channelbag, f'pose.bones["{HEAD_BONE}"]', plan.scene_frames, basis,
                       channelbag.groups.new(HEAD_BONE))
    if previous is not None and previous.users == 0 and not previous.get(ACTION_TAG):
        previous.use_fake_user = True  # keep the user's own earlier action reachable


def _camera(context: bpy.types.Context, results: Results, plan: ImportPlan, undo: list,
            warnings: list[str], name: str) -> bpy.types.Object:
    scene = context.scene
    old = bpy.data.objects.get(name)
    data = bpy.data.cameras.new(name)
    undo.append(lambda: bpy.data.cameras.remove(data))
    cam = plan.camera
    data.lens, data.sensor_width, data.sensor_fit = cam.lens_mm, cam.sensor_width_mm, cam.sensor_fit
    data.shift_x, data.shift_y = cam.shift_x, cam.shift_y
    try:
        clip = bpy.data.movieclips.load(results.footage, check_existing=True)
    except RuntimeError:
        clip = None  # footage moved: the camera still matches, without its background
        warnings.append(f"the footage {results.footage} could not be loaded: no camera background")
    if clip is not None:
        clip.frame_start = int(plan.scene_frames[0] - results.frames[0])
        background = data.background_images.new()
        background.source = "MOVIE_CLIP"
        background.clip = clip
        background.alpha = 1.0
        data.show_background_images = True
    obj = bpy.data.objects.new(name, data)
    undo.append(lambda: bpy.data.objects.remove(obj))
    context.collection.objects.link(obj)
    obj.matrix_world = Matrix(plan.camera_world.tolist())
    previous_camera = scene.camera
    previous_size = (scene.render.resolution_x, scene.render.resolution_y,
                     scene.render.resolution_percentage)

    def restore_scene() -> None:
        scene.camera = previous_camera
        (scene.render.resolution_x, scene.render.resolution_y,
         scene.render.resolution_percentage) = previous_size

    undo.append(restore_scene)
    scene.camera = obj
    scene.render.resolution_x, scene.render.resolution_y = cam.resolution_x, cam.resolution_y
    scene.render.resolution_percentage = 100
    if old is not None and old is not obj:
        old_data = old.data
        bpy.data.objects.remove(old)
        if old_data is not None and old_data.users == 0:
            bpy.data.cameras.remove(old_data)
        obj.name = name
        data.name = name
    return obj
