"""Writing an ImportPlan and a GeometryPlan into Blender: the geometry in the chosen mode, the
head and face-control bones' keys, and a camera with the clip's intrinsics and the footage as
its background, parented to the head's rig.

Everything lives in the rig's space: moving the rig moves the performance with its camera, and
a re-import keeps the rig where the animator put it. A re-import replaces what FaceAdapt made
(shape keys named `fa_*`, its Mesh Cache modifier, its channels in the actions, the camera of
that name) and nothing else: the user's own shape keys, F-curves and actions survive
(keyframes.ActionEdit). If anything fails, the changes made so far are undone.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import bpy
import numpy as np
from mathutils import Matrix

from ..backend.formats.results_dir import Results
from ..backend.heads.arkit import ARKIT_NAMES
from .face_controls import AXIS_INDEX, CONTROL_BONES, DRIVEN_KEYS
from .geometry_plan import GeometryPlan
from .head_builder import HEAD_BONE
from .keyframes import ActionEdit, set_keys, set_transform_keys
from .point_cache import write_pc2
from .render_setup import setup_render
from .results_import import ImportPlan, bone_basis
from .texture_sequence import attach_texture_sequence, texture_views

FRAME_KEY_PREFIX = "fa_"
# Every shape key an import makes, and only those (a user's own `fa_smile` is not FaceAdapt's).
OWN_KEY = re.compile(r"fa_(\d{6}|mean|basis_\d{2})")
CAMERA_PROPERTY = "faceadapt_camera"  # on the head: the name of the camera its import made
CACHE_MODIFIER = "FaceAdapt Cache"
RESULTS_PROPERTY = "faceadapt_results"  # on the head: the results directory last imported
GEOMETRY_PROPERTY = "faceadapt_geometry"
ERROR_PROPERTY = "faceadapt_reconstruction_error_m"  # [mean, max] of the geometry written
SOURCE_ZERO_PROPERTY = "faceadapt_scene_frame_of_source_zero"
POINT_CACHE_FILE = "cache.pc2"
DECODED_VIEW, PROJECTED_VIEW = "footage", "projected"  # texture folders of the results


def camera_name_of(head: bpy.types.Object) -> str:
    """The camera an import makes for `head`: one per head, so performances coexist."""
    return f"{head.name} Camera"


def frame_key_name(source_frame: int) -> str:
    return f"{FRAME_KEY_PREFIX}{source_frame:06d}"


def basis_key_name(component: int) -> str:
    return f"{FRAME_KEY_PREFIX}basis_{component:02d}"


MEAN_KEY = f"{FRAME_KEY_PREFIX}mean"


def has_face_controls(rig: bpy.types.Object) -> bool:
    return all(name in rig.pose.bones for name in CONTROL_BONES)


def _is_key_channel(data_path: str) -> bool:
    """Shape-key channels an import writes: its own keys and the head's ARKit sliders."""
    match = re.fullmatch(r'key_blocks\["(.*)"\]\.value', data_path)
    return match is not None and (OWN_KEY.fullmatch(match[1]) is not None
                                  or match[1] in ARKIT_NAMES)


def _is_rig_channel(data_path: str) -> bool:
    """Rig channels an import writes: the head and face-control bones, and the driver bases."""
    bones = (HEAD_BONE, *CONTROL_BONES)
    return (any(data_path.startswith(f'pose.bones["{b}"].') for b in bones)
            or data_path.startswith('["fa_base_'))


def import_into_scene(context: bpy.types.Context, head: bpy.types.Object, results: Results,
                      plan: ImportPlan, geometry: GeometryPlan, warnings: list[str],
                      camera_name: str, render: bool = True) -> bpy.types.Object:
    """Apply `plan` and `geometry` to `head` (a FaceAdapt head mesh parented to its rig); returns
    the camera, `camera_name` (an earlier camera of that name is replaced: each head keeps its
    own, see camera_name_of). The results'
    per-frame textures go on the head's material (decoded ones when there are, else the
    projected footage); `render`: make F12 render the head over the footage (render_setup).
    Problems that do not stop the import are appended to `warnings`."""
    rig = head.parent
    if rig is None or rig.type != "ARMATURE" or HEAD_BONE not in rig.pose.bones:
        raise ValueError(f"'{head.name}' is not parented to a FaceAdapt rig with a '{HEAD_BONE}' "
                         "bone: add the head with Add FaceAdapt Head")
    undo: list[Callable[[], None]] = []
    commits: list[Callable[[], None]] = []
    try:
        if head.data.shape_keys is None:
            head.shape_key_add(name="Basis", from_mix=False)
            undo.append(lambda: head.shape_key_clear())
        # The actions are copied before the earlier keys are renamed aside: Blender rewrites the
        # paths of a renamed key's F-curves in the assigned action, which must be the original.
        keys = ActionEdit(head.data.shape_keys, "KEY", f"{head.name} FaceAdapt", _is_key_channel)
        undo.append(keys.discard)
        rig_edit = ActionEdit(rig, "OBJECT", f"{rig.name} FaceAdapt", _is_rig_channel)
        undo.append(rig_edit.discard)
        _set_aside_previous_keys(head, undo, commits)
        _set_aside_cache_modifier(head, undo, commits)
        if geometry.mode == "shape-keys":
            _frame_shape_keys(head, results, plan, keys, undo)
        elif geometry.mode == "compact":
            _compact_shape_keys(head, geometry, plan, keys, undo)
        elif geometry.mode == "point-cache":
            _point_cache(head, results, plan, undo)
        if geometry.mode != "arkit":
            _rest_arkit_sliders(head, undo)
        for name, values in geometry.key_values.items():
            set_keys(keys.curve(f'key_blocks["{name}"].value'), plan.scene_frames, values, "LINEAR")
        _rig_keys(rig, plan, geometry, rig_edit)
        zero = int(plan.scene_frames[0] - results.frames[0])
        camera, clip = _camera(context, head, results, zero, plan, undo, commits, warnings,
                               camera_name)
        if render:
            setup = setup_render(context.scene, camera, head, clip, zero, deferred=True)
            undo.append(setup.restore)
            commits.append(setup.commit)
            warnings.extend(setup.warnings)
        _textures(head, results, zero, warnings)  # last: it changes nothing when it fails
    except Exception:
        _undo_all(undo)
        raise
    for edit in (keys, rig_edit):
        warnings.extend(f"removed or replaced your own keys on {path} (FaceAdapt's channel)"
                        for path in edit.replaced_user_channels)
        edit.commit()
    for step in commits:
        step()
    head[RESULTS_PROPERTY] = str(results.directory)
    head[GEOMETRY_PROPERTY] = geometry.mode
    head[ERROR_PROPERTY] = [geometry.error_mean_m, geometry.error_max_m]
    head[SOURCE_ZERO_PROPERTY] = zero
    _play_range(context.scene, head, int(plan.scene_frames.min()), int(plan.scene_frames.max()))
    return camera


def _undo_all(undo: list[Callable[[], None]]) -> None:
    """Every undo step, newest first, each even when an earlier one raised (a later step must
    not be skipped); the first error is raised after them all."""
    errors = []
    for step in reversed(undo):
        try:
            step()
        except Exception as exc:
            errors.append(exc)
    if errors:
        raise errors[0]


def _play_range(scene: bpy.types.Scene, head: bpy.types.Object, first: int, last: int) -> None:
    """The scene plays this performance, and those of the other FaceAdapt heads in it."""
    others = [o for o in scene.objects if o is not head and RESULTS_PROPERTY in o]
    if others:
        first, last = min(first, scene.frame_start), max(last, scene.frame_end)
    scene.frame_start, scene.frame_end = first, last


def _set_aside_previous_keys(head: bpy.types.Object, undo: list, commits: list) -> None:
    """Rename an earlier import's keys out of the way; removed only once the new import
    succeeded (so a failure restores them)."""
    old = [k for k in head.data.shape_keys.key_blocks if OWN_KEY.fullmatch(k.name)]
    names = [k.name for k in old]
    for key in old:
        key.name = "replaced_" + key.name

    def restore() -> None:
        for key, name in zip(old, names, strict=True):
            key.name = name

    def remove() -> None:
        for key in old:
            head.shape_key_remove(key)

    undo.append(restore)
    commits.append(remove)


def _set_aside_cache_modifier(head: bpy.types.Object, undo: list, commits: list) -> None:
    old = head.modifiers.get(CACHE_MODIFIER)
    if old is None:
        return
    old.name = "replaced " + CACHE_MODIFIER

    def restore() -> None:
        old.name = CACHE_MODIFIER

    undo.append(restore)
    commits.append(lambda: head.modifiers.remove(old))


def _new_keys(head: bpy.types.Object, undo: list) -> Callable[[str], bpy.types.ShapeKey]:
    """A shape-key maker whose keys an undo removes again."""
    made: list[bpy.types.ShapeKey] = []

    def remove() -> None:
        for key in reversed(made):
            head.shape_key_remove(key)

    undo.append(remove)

    def new(name: str) -> bpy.types.ShapeKey:
        key = head.shape_key_add(name=name, from_mix=False)
        made.append(key)
        return key

    return new


def _frame_shape_keys(head: bpy.types.Object, results: Results, plan: ImportPlan,
                      keys: ActionEdit, undo: list) -> None:
    new = _new_keys(head, undo)
    for source_frame, vertices, frame in zip(results.frames, results.vertices, plan.scene_frames,
                                             strict=True):
        key = new(frame_key_name(int(source_frame)))
        key.data.foreach_set("co", vertices.astype(np.float32).ravel())
        key.value = 0.0
        # On exactly at its scene frame, off one frame before and after (constant steps).
        set_keys(keys.curve(f'key_blocks["{key.name}"].value'), [frame - 1, frame, frame + 1],
                 [0.0, 1.0, 0.0], "CONSTANT")


def _compact_shape_keys(head: bpy.types.Object, geometry: GeometryPlan, plan: ImportPlan,
                        keys: ActionEdit, undo: list) -> None:
    basis = geometry.compact
    assert basis is not None
    new = _new_keys(head, undo)
    rest = _rest_vertices(head)
    mean = new(MEAN_KEY)
    mean.data.foreach_set("co", basis.mean.astype(np.float32).ravel())
    mean.value = 1.0
    for k, component in enumerate(basis.components):
        key = new(basis_key_name(k))
        key.data.foreach_set("co", (rest + component).astype(np.float32).ravel())
        key.slider_min, key.slider_max = -1.0, 1.0
        set_keys(keys.curve(f'key_blocks["{key.name}"].value'), plan.scene_frames,
                 basis.weights[:, k], "LINEAR")


def _rest_vertices(head: bpy.types.Object) -> np.ndarray:
    return _key_vertices(head.data.shape_keys.key_blocks[0])


def _key_vertices(key: bpy.types.ShapeKey) -> np.ndarray:
    """(V, 3) float32 positions of a shape key."""
    values = np.empty(len(key.data) * 3, np.float32)
    key.data.foreach_get("co", values)
    return values.reshape(-1, 3)


def head_shapes(head: bpy.types.Object) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """The head's rest vertices (V, 3) and its ARKit shape keys as deltas from rest (V, 3), in
    head space, metres (what geometry_plan.plan_geometry needs)."""
    keys = head.data.shape_keys
    if keys is None:
        return np.array([v.co for v in head.data.vertices], np.float32).reshape(-1, 3), {}
    rest = _key_vertices(keys.key_blocks[0])
    shapes = {k.name: _key_vertices(k) - rest for k in keys.key_blocks[1:] if k.name in ARKIT_NAMES}
    return rest, shapes


def _rest_arkit_sliders(head: bpy.types.Object, undo: list) -> None:
    """The exact modes carry the whole expression: the ARKit sliders an ARKit-curves import had
    keyed would add to it, so those not driven by the face controls go back to 0."""
    driven = {k.key for k in DRIVEN_KEYS}
    blocks = [k for k in head.data.shape_keys.key_blocks if k.name in ARKIT_NAMES
              and k.name not in driven]
    values = [k.value for k in blocks]

    def restore() -> None:
        for block, value in zip(blocks, values, strict=True):
            block.value = value

    undo.append(restore)
    for block in blocks:
        block.value = 0.0


def _point_cache(head: bpy.types.Object, results: Results, plan: ImportPlan, undo: list) -> None:
    """The vertices as `cache.pc2` in the results directory and a Mesh Cache modifier first in
    the stack (before the Armature: the cache is in head space). INTEGRATE adds the shape keys'
    deformation on top of the cache, so the face controls and the user's own keys still act."""
    path = Path(results.directory) / POINT_CACHE_FILE
    try:
        write_pc2(path, results.vertices, start_frame=float(plan.scene_frames[0]))
    except OSError as exc:
        raise ValueError(f"cannot write the point cache {path}: {exc}; make the results folder "
                         "writable or choose another geometry mode") from exc
    modifier = head.modifiers.new(CACHE_MODIFIER, "MESH_CACHE")
    undo.append(lambda: head.modifiers.remove(modifier))
    modifier.cache_format = "PC2"
    modifier.filepath = str(path)
    modifier.deform_mode = "INTEGRATE"
    modifier.frame_start = float(plan.scene_frames[0])
    head.modifiers.move(len(head.modifiers) - 1, 0)


def _rig_keys(rig: bpy.types.Object, plan: ImportPlan, geometry: GeometryPlan,
              edit: ActionEdit) -> None:
    bone = rig.data.bones[HEAD_BONE]
    # The performance in the rig's space: the rig's own placement is the animator's.
    basis = bone_basis(plan.head_world, np.eye(4), np.array(bone.matrix_local))
    set_transform_keys(edit.channelbag, f'pose.bones["{HEAD_BONE}"]', plan.scene_frames, basis,
                       edit.group)
    for (bone_name, channel), angles in geometry.bone_angles.items():
        curve = edit.curve(f'pose.bones["{bone_name}"].rotation_euler', AXIS_INDEX[channel])
        set_keys(curve, plan.scene_frames, angles, "LINEAR")
    for key in DRIVEN_KEYS:
        if key.key in geometry.bases and key.base_property in rig:
            set_keys(edit.curve(f'["{key.base_property}"]'), plan.scene_frames,
                     geometry.bases[key.key], "LINEAR")


def _textures(head: bpy.types.Object, results: Results, scene_frame_of_source_zero: int,
              warnings: list[str]) -> None:
    views = texture_views(results.directory)
    view = next((v for v in (DECODED_VIEW, PROJECTED_VIEW) if v in views), None)
    if view is None:
        return
    material = head.active_material
    if material is None:
        warnings.append(f"'{head.name}' has no material: its textures are not shown")
        return
    attach_texture_sequence(material, results.directory, results.frames,
                            scene_frame_of_source_zero, view)


def _camera(context: bpy.types.Context, head: bpy.types.Object, results: Results,
            scene_frame_of_source_zero: int, plan: ImportPlan, undo: list, commits: list,
            warnings: list[str], name: str) -> tuple[bpy.types.Object, bpy.types.MovieClip | None]:
    """The head's camera, the rig's child, with the footage as its background: a clip of its own
    (the user's clips keep their timing). The camera an earlier import made for this head (named
    on the head) is renamed aside and removed only when the import commits."""
    scene = context.scene
    old = bpy.data.objects.get(str(head.get(CAMERA_PROPERTY, "")))
    if old is not None and (old.type != "CAMERA" or old.parent is not head.parent):
        old = None  # a name reused by something else: not this head's camera
    if old is not None:
        old_name = old.name
        old.name = f"replaced {old_name}"

        def restore_name() -> None:
            old.name = old_name

        undo.append(restore_name)
        commits.append(lambda: remove_camera(old))
    data = bpy.data.cameras.new(name)
    undo.append(lambda: bpy.data.cameras.remove(data))
    cam = plan.camera
    data.lens, data.sensor_width, data.sensor_fit = cam.lens_mm, cam.sensor_width_mm, cam.sensor_fit
    data.shift_x, data.shift_y = cam.shift_x, cam.shift_y
    try:
        clip = bpy.data.movieclips.load(results.footage, check_existing=False)
    except RuntimeError:
        clip = None  # footage moved: the camera still matches, without its background
        warnings.append(f"the footage {results.footage} could not be loaded: no camera background")
    if clip is not None:
        undo.append(lambda: bpy.data.movieclips.remove(clip))
        clip.frame_start = scene_frame_of_source_zero
        background = data.background_images.new()
        background.source = "MOVIE_CLIP"
        background.clip = clip
        background.alpha = 1.0
        data.show_background_images = True
    obj = bpy.data.objects.new(name, data)
    undo.append(lambda: bpy.data.objects.remove(obj))
    context.collection.objects.link(obj)
    obj.parent = head.parent
    obj.matrix_parent_inverse = Matrix.Identity(4)
    obj.matrix_basis = Matrix(plan.camera_world.tolist())
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

    def name_it() -> None:
        obj.name = data.name = name  # the plain name, free once the old camera is gone
        head[CAMERA_PROPERTY] = obj.name

    commits.append(name_it)
    return obj, clip


def remove_camera(camera: bpy.types.Object) -> None:
    """Remove an import's camera with its data and its own footage clip."""
    data = camera.data
    clips = [b.clip for b in data.background_images if b.clip is not None] if data else []
    bpy.data.objects.remove(camera)
    if data is not None and data.users == 0:
        bpy.data.cameras.remove(data)
    for clip in clips:  # the camera's own footage clip, unless something else shows it
        if clip.users == 0:
            bpy.data.movieclips.remove(clip)
