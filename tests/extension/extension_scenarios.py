"""Scenarios run against the installed extension in a fresh bpy process.

    <blender python> tests/extension/extension_scenarios.py ZIP FOOTAGE REPORT.json WORKDIR BACKEND_PYTHON

Run from a directory outside the repository, so `backend` and `blender_addon` come from the
installed extension, not the checkout. Each scenario records what it observed in the report;
tests/extension/test_extension.py asserts on it. The real backend runs through the operators'
blocking path (background mode) with BACKEND_PYTHON (an interpreter with the backend's packages)
as the add-on's backend interpreter, over the process boundary, as users have it: this process
(Blender's Python) need not have torch.
"""

from __future__ import annotations

import importlib
import json
import os
import shutil
import stat
import sys
import time
import types
import warnings
from pathlib import Path

import bpy
import numpy as np
from bpy_extras.object_utils import world_to_camera_view
from extension_build import MODULE
from scenario_observations import extension_deprecations, run_operator, run_scenario

STRIP_START = 11  # scene frame of source frame 0: deliberately not 1
TRIM_START, TRIM_END = 5, 40  # frames trimmed off the strip's start and end


def prefs() -> bpy.types.AddonPreferences:
    return bpy.context.preferences.addons[MODULE].preferences


def fake_interpreter(workdir: Path, name: str, body: str) -> str:
    path = workdir / name
    path.write_text("#!/bin/sh\n" + body + "\n")
    path.chmod(path.stat().st_mode | stat.S_IEXEC)
    return str(path)


def landmark_overlay_error(head: bpy.types.Object, results_dir: Path, scene_frame: int,
                           row: int) -> float:
    """Mean px distance between the imported head's landmark vertices, evaluated at
    `scene_frame` and projected by the scene camera, and the results' landmarks_fit[row]."""
    scene = bpy.context.scene
    scene.frame_set(scene_frame)
    depsgraph = bpy.context.evaluated_depsgraph_get()
    evaluated = head.evaluated_get(depsgraph)
    mesh = evaluated.to_mesh()
    with np.load(results_dir / "mesh.npz") as m, np.load(results_dir / "tracking.npz") as t:
        vertex, mask, fit = m["landmark_vertex"], m["landmark_mask"], t["landmarks_fit"][row]
    width, height = scene.render.resolution_x, scene.render.resolution_y
    errors = []
    for i in np.flatnonzero(mask):
        world = evaluated.matrix_world @ mesh.vertices[int(vertex[i])].co
        ndc = world_to_camera_view(scene, scene.camera, world)
        px = np.array([ndc.x * width - 0.5, (1 - ndc.y) * height - 0.5])
        errors.append(np.linalg.norm(px - fit[i]))
    evaluated.to_mesh_clear()
    return float(np.mean(errors))


def trim(strip: bpy.types.Strip, start: int, end: int) -> None:
    """Trim frames off a strip's start and end (Blender 5.3 renamed frame_offset_start/_end to
    left/right_handle_offset and deprecated the old names; 5.0 has only those)."""
    if hasattr(strip, "left_handle_offset"):
        strip.left_handle_offset, strip.right_handle_offset = start, end
    else:
        strip.frame_offset_start, strip.frame_offset_end = start, end


def handles(strip: bpy.types.Strip) -> tuple[int, int]:
    """The first scene frame a strip plays and the frame after its last (5.3: left/right_handle;
    5.0: frame_final_start/_end)."""
    if hasattr(strip, "left_handle"):
        return strip.left_handle, strip.right_handle
    return strip.frame_final_start, strip.frame_final_end


def main() -> None:
    zip_path, footage, report_path, workdir, backend_python = sys.argv[1:6]
    report: dict = {}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        run_scenarios(report, zip_path, footage, Path(workdir), backend_python)
    report["deprecations"] = extension_deprecations(
        caught, Path(bpy.utils.user_resource("EXTENSIONS")) / "user_default" / "faceadapt")
    Path(report_path).write_text(json.dumps(report, indent=1))


def run_scenarios(report: dict, zip_path: str, footage: str, workdir_path: Path,
                  backend_python: str) -> None:
    bpy.ops.wm.read_factory_settings(use_empty=True)
    bpy.ops.extensions.package_install_files(filepath=zip_path, repo="user_default",
                                             enable_on_install=True)
    report["enabled"] = MODULE in bpy.context.preferences.addons
    prefs().backend_python = backend_python
    report["check_backend"] = run_operator("check_backend")
    report["install_backend_offline"] = run_operator("install_backend")

    # Track Footage with no head and no strip: refused, nothing changed.
    report["track_without_head"] = run_operator("track_footage")
    t = time.perf_counter()
    report["add_head"] = run_operator("add_head")
    report["add_head_seconds"] = time.perf_counter() - t
    head = bpy.context.active_object
    report["head"] = {"name": head.name, "vertices": len(head.data.vertices),
                      "shape_keys": len(head.data.shape_keys.key_blocks),
                      "rig": head.parent.name if head.parent else None,
                      "material": bool(head.data.materials),
                      "neck_cut": ("FaceAdapt Neck Cut" in head.active_material.node_tree.nodes
                                   and "faceadapt_rest_height" in head.data.attributes)}
    report["track_without_strip"] = run_operator("track_footage")

    scene = bpy.context.scene
    editor = scene.sequence_editor_create()
    colour = editor.strips.new_effect("colour", "COLOR", 2, frame_start=1, length=10)
    editor.active_strip = colour
    report["track_colour_strip"] = run_operator("track_footage")

    strip = editor.strips.new_movie("performance", footage, 1, STRIP_START)
    trim(strip, TRIM_START, TRIM_END)
    editor.active_strip = strip
    bpy.context.view_layer.objects.active = head
    first, end = handles(strip)
    report["strip"] = {"frame_final_start": first, "frame_final_end": end}
    scene.faceadapt.geometry = "shape-keys"  # exact: the overlay below checks it to 0.05 px
    scene.faceadapt.match_fps = True

    # The head in Edit Mode: refused before the backend starts (was a raw traceback).
    bpy.ops.object.mode_set(mode="EDIT")
    report["track_in_edit_mode"] = run_operator("track_footage")
    bpy.ops.object.mode_set(mode="OBJECT")

    # Interpreter problems and a backend killed mid-run: reported, scene untouched.
    prefs().backend_python = str(workdir_path / "missing-python")
    report["missing_interpreter"] = run_operator("track_footage")
    prefs().backend_python = fake_interpreter(
        workdir_path, "broken-python", "echo 'ModuleNotFoundError: No module named torch' >&2; exit 1")
    report["broken_interpreter"] = run_operator("track_footage")
    report["broken_check"] = run_operator("check_backend")
    prefs().backend_python = fake_interpreter(
        workdir_path, "crashing-python",
        f'"{backend_python}" "$@" & pid=$!; sleep 4; kill -9 $pid; wait $pid')
    report["killed_mid_run"] = run_operator("track_footage")
    prefs().backend_python = str(workdir_path)
    report["interpreter_folder"] = run_operator("track_footage")
    prefs().backend_python = "//venv/bin/python"
    report["relative_interpreter_unsaved"] = run_operator("track_footage")
    prefs().backend_python = backend_python

    # An output folder that cannot be made (under a file), and a head whose mesh was edited.
    blocker = workdir_path / "not-a-folder"
    blocker.write_text("a file")
    scene.faceadapt.output_folder = str(blocker / "results")
    report["unwritable_output"] = run_operator("track_footage")
    scene.faceadapt.output_folder = ""
    edited = head.copy()
    edited.data = head.data.copy()
    scene.collection.objects.link(edited)
    edited.parent = head.parent
    for obj in bpy.context.selected_objects:
        obj.select_set(False)  # Edit Mode would take in every selected mesh
    edited.select_set(True)
    bpy.context.view_layer.objects.active = edited
    bpy.ops.object.mode_set(mode="EDIT")
    bpy.ops.mesh.select_all(action="SELECT")
    bpy.ops.mesh.subdivide()
    bpy.ops.object.mode_set(mode="OBJECT")
    report["edited_topology"] = run_operator("track_footage")
    edited_mesh = edited.data
    bpy.data.objects.remove(edited)
    bpy.data.meshes.remove(edited_mesh)
    head.select_set(True)
    bpy.context.view_layer.objects.active = head

    t = time.perf_counter()
    report["track"] = run_operator("track_footage")
    report["track_seconds"] = time.perf_counter() - t
    results_dir = Path(sorted((Path(bpy.utils.extension_path_user(MODULE, path="results"))).iterdir())[-1])
    report["results_dir"] = str(results_dir)
    with np.load(results_dir / "tracking.npz") as tracking:
        frames = tracking["frames"].tolist()
    keys = head.data.shape_keys
    channelbag_curves = keys.animation_data.action.layers[0].strips[0].channelbags[0].fcurves
    on_frames = {}
    for curve in channelbag_curves:
        points = [(k.co[0], k.co[1]) for k in curve.keyframe_points]
        on = [f for f, v in points if v == 1.0]
        on_frames[curve.data_path] = on
    rig = head.parent
    rig_curves = rig.animation_data.action.layers[0].strips[0].channelbags[0].fcurves
    report["imported"] = {
        "frames": frames,
        "shape_keys": len(keys.key_blocks),
        "frame_key_on": on_frames,
        "bone_curves": sorted({c.data_path for c in rig_curves}),
        "bone_key_frames": sorted({int(k.co[0]) for c in rig_curves for k in c.keyframe_points}),
        "scene_camera": scene.camera.name if scene.camera else None,
        "camera": {"lens": scene.camera.data.lens, "sensor_width": scene.camera.data.sensor_width,
                   "sensor_height": scene.camera.data.sensor_height,
                   "sensor_fit": scene.camera.data.sensor_fit,
                   "shift": [scene.camera.data.shift_x, scene.camera.data.shift_y],
                   "background": [b.source for b in scene.camera.data.background_images]},
        "resolution": [scene.render.resolution_x, scene.render.resolution_y],
        "overlay_px": {str(f): landmark_overlay_error(head, results_dir, STRIP_START + f,
                                                      frames.index(f)) for f in (frames[2], frames[-3])},
    }

    # Results tracked on another topology: refused, nothing changed.
    other = workdir_path / "other-topology"
    other.mkdir()
    (other / "tracking.npz").write_bytes((results_dir / "tracking.npz").read_bytes())
    with np.load(results_dir / "mesh.npz") as mesh:
        np.savez(other / "mesh.npz", **{**mesh, "topology_hash": np.array("0123456789abcdef")})
    document = json.loads((results_dir / "result.json").read_text())
    document["topology_hash"] = "0123456789abcdef"
    (other / "result.json").write_text(json.dumps(document))
    report["other_topology"] = run_operator("import_results", directory=str(other))
    # A re-import that fails at its last step (a texture frame missing), after the render setup
    # and the camera were replaced: everything, the earlier import's camera, lights and world
    # included, is as it was.
    broken = workdir_path / "missing-texture"
    shutil.copytree(results_dir, broken)
    sorted((broken / "textures" / "footage").glob("*.png"))[0].unlink()
    report["missing_texture_frame"] = run_operator("import_results", directory=str(broken))
    report["reimport"] = run_operator("import_results", directory=str(results_dir),
                                      geometry="shape-keys")
    report["reimport"] = run_operator("import_results", directory=str(results_dir),
                                      geometry="shape-keys")
    report["shape_keys_after_reimport"] = len(head.data.shape_keys.key_blocks)
    report["after_reimport"] = {"cameras": sorted(c.name for c in bpy.data.cameras),
                                "camera_objects": sorted(o.name for o in bpy.data.objects
                                                         if o.type == "CAMERA"),
                                "actions": sorted(a.name for a in bpy.data.actions)}

    blend = workdir_path / "scene.blend"
    bpy.ops.wm.save_as_mainfile(filepath=str(blend))

    # The head linked from a library: refused, it cannot be changed here.
    library_scene = workdir_path / "library.blend"
    bpy.ops.wm.save_as_mainfile(filepath=str(library_scene), copy=True)
    with bpy.data.libraries.load(str(library_scene), link=True) as (_, linked):
        linked.objects = [report["head"]["name"]]
    linked_head = linked.objects[0]
    bpy.context.scene.collection.objects.link(linked_head)
    bpy.context.view_layer.objects.active = linked_head
    report["linked_head"] = run_operator("track_footage")

    bpy.ops.wm.open_mainfile(filepath=str(blend))
    reloaded = bpy.data.objects[report["head"]["name"]]
    report["reloaded"] = {"shape_keys": len(reloaded.data.shape_keys.key_blocks),
                          "has_key_action": reloaded.data.shape_keys.animation_data.action is not None,
                          "rig_action": reloaded.parent.animation_data.action is not None,
                          "scene_camera": bpy.context.scene.camera.name}

    run_workflow(report, footage, results_dir)
    run_track_strips(report, footage, workdir_path)


def evaluated_head_space(head: bpy.types.Object, scene_frame: int) -> np.ndarray:
    """(V, 3) the head's evaluated vertices in head space at `scene_frame` (its armature off)."""
    armature = head.modifiers["Armature"]
    armature.show_viewport = False
    bpy.context.scene.frame_set(scene_frame)
    evaluated = head.evaluated_get(bpy.context.evaluated_depsgraph_get())
    mesh = evaluated.to_mesh()
    co = np.empty(len(mesh.vertices) * 3, np.float32)
    mesh.vertices.foreach_get("co", co)
    evaluated.to_mesh_clear()
    armature.show_viewport = True
    return co.reshape(-1, 3)


def key_curve_paths(owner: bpy.types.ID) -> list[str]:
    action = owner.animation_data.action
    return sorted({c.data_path for c in action.layers[0].strips[0].channelbags[0].fcurves})


class LayoutRecorder:
    """Stands in for a panel's UILayout (panels never draw in background mode): records the
    labels and operators a panel's draw asks for."""

    def __init__(self) -> None:
        self.labels: list[str] = []
        self.operators: list[str] = []

    def label(self, text: str = "", **_: object) -> None:
        self.labels.append(text)

    def operator(self, name: str, **_: object) -> object:
        self.operators.append(name)
        return types.SimpleNamespace()

    def __getattr__(self, _: str) -> object:
        return lambda *args, **kwargs: self  # column(), row(), box(), prop(), separator()...


def draw_panels() -> dict:
    """What the installed extension's 3D View panels show now."""
    panel = importlib.import_module(f"{MODULE}.blender_addon.panel")
    recorder = LayoutRecorder()
    for cls in panel.PANELS:
        cls.draw(types.SimpleNamespace(layout=recorder), bpy.context)
    return {"labels": recorder.labels, "operators": recorder.operators}


def run_workflow(report: dict, footage: str, results_dir: Path) -> None:
    """The animator's journey on the tracked strip: every geometry mode against the results, a
    hand-keyed shape key kept through re-imports and a reload, a moved rig kept, the jaw bone
    posed, a second performance from a movie clip beside the first."""
    head = bpy.data.objects[report["head"]["name"]]
    bpy.context.view_layer.objects.active = head
    bpy.context.scene.faceadapt.output_folder = str(results_dir.parent)  # listed by the panel
    report["panels"] = draw_panels()
    bpy.context.scene.faceadapt.output_folder = ""
    with np.load(results_dir / "tracking.npz") as tracking:
        frames, vertices = tracking["frames"], tracking["vertices"]
    rows = [0, len(frames) // 2, len(frames) - 1]
    own = head.shape_key_add(name="userSmile", from_mix=False)
    for frame, value in ((20, 0.25), (30, 0.75)):
        own.value = value
        own.keyframe_insert("value", frame=frame)
    modes = {}
    for mode in ("arkit", "compact", "point-cache", "shape-keys"):
        outcome = run_operator("import_results", directory=str(results_dir), geometry=mode)
        errors = [float(np.linalg.norm(evaluated_head_space(head, STRIP_START + int(frames[r]))
                                       - vertices[r], axis=-1).max()) for r in rows]
        modes[mode] = {"result": outcome["result"], "error": outcome["error"],
                       "max_vertex_difference_m": max(errors),
                       "reported_error_m": list(head["faceadapt_reconstruction_error_m"]),
                       "shape_keys": len(head.data.shape_keys.key_blocks),
                       "key_curves": len(key_curve_paths(head.data.shape_keys)),
                       "own_curve_kept": 'key_blocks["userSmile"].value'
                       in key_curve_paths(head.data.shape_keys),
                       "cache_modifier": "FaceAdapt Cache" in head.modifiers}
    report["modes"] = modes
    report["rig_curves"] = key_curve_paths(head.parent)
    material = head.active_material
    node = material.node_tree.nodes.get("FaceAdapt Texture")
    report["texture_node"] = {"image": node.image.filepath if node and node.image else None,
                              "source": node.image.source if node and node.image else None}
    report["texture_view_projected"] = run_operator("texture_view", view="projected")
    node = material.node_tree.nodes.get("FaceAdapt Texture")
    report["texture_node_projected"] = node.image.filepath if node and node.image else None
    report["texture_view_albedo"] = run_operator("texture_view", view="albedo")
    report["texture_node_albedo"] = "FaceAdapt Texture" in material.node_tree.nodes

    # The rig moved by the animator: a re-import keeps it there, and the camera moves with it.
    rig = head.parent
    rig.location = (0.4, -0.2, 0.1)
    report["moved_rig"] = run_operator("import_results", directory=str(results_dir),
                                       geometry="shape-keys")
    row = len(frames) // 2
    report["moved_rig_location"] = list(rig.location)
    report["moved_rig_overlay_px"] = landmark_overlay_error(head, results_dir,
                                                            STRIP_START + int(frames[row]), row)

    # The camera file of the head's own camera is the tracked pose (the rig moved, the camera
    # with it); Bake for Camera decodes textures for another camera and shows them.
    camera_file = importlib.import_module(f"{MODULE}.blender_addon.camera_export").camera_file
    zero = int(head["faceadapt_scene_frame_of_source_zero"])
    poses = camera_file(bpy.context.scene, rig, bpy.context.scene.camera,
                        {int(f): zero + int(f) for f in frames[:3]}).poses
    with np.load(results_dir / "tracking.npz") as tracking:
        report["camera_file_pose_difference"] = max(
            float(np.abs(poses[int(f)] - tracking["head_pose"][i]).max())
            for i, f in enumerate(frames[:3]))
    side = bpy.data.objects.new("Side Camera", bpy.context.scene.camera.data.copy())
    bpy.context.scene.collection.objects.link(side)
    side.matrix_world = bpy.context.scene.camera.matrix_world.copy()
    side.location.x += 0.15
    side.rotation_euler.z += 0.3
    bpy.context.scene.camera = side
    bpy.context.view_layer.objects.active = head
    report["bake_for_camera"] = run_operator("bake_for_camera")
    node = head.active_material.node_tree.nodes.get("FaceAdapt Texture")
    report["baked_texture"] = node.image.filepath if node and node.image else None

    # Posing the jaw bone opens the mouth, through the jawOpen driver, on top of the tracking.
    scene = bpy.context.scene
    scene.frame_set(STRIP_START + int(frames[row]))
    chin_before = evaluated_head_space(head, scene.frame_current)
    jaw = rig.pose.bones["jaw"]
    jaw.rotation_euler.x += 0.1
    bpy.context.view_layer.update()
    depsgraph = bpy.context.evaluated_depsgraph_get()
    evaluated = head.evaluated_get(depsgraph)
    opened = evaluated.data.shape_keys.key_blocks["jawOpen"].value if evaluated.data.shape_keys \
        else head.data.shape_keys.key_blocks["jawOpen"].value
    head.modifiers["Armature"].show_viewport = False
    depsgraph = bpy.context.evaluated_depsgraph_get()
    mesh = head.evaluated_get(depsgraph).to_mesh()
    chin_after = np.array([v.co for v in mesh.vertices], np.float32)
    head.evaluated_get(depsgraph).to_mesh_clear()
    head.modifiers["Armature"].show_viewport = True
    with np.load(results_dir / "mesh.npz") as mesh_npz:
        chin = int(mesh_npz["landmark_vertex"][8])
    report["jaw_pose"] = {"jaw_open_key": float(head.data.shape_keys.key_blocks["jawOpen"].value),
                          "evaluated": float(opened),
                          "chin_drop_m": float(chin_before[chin][2] - chin_after[chin][2])}

    blend = results_dir.parent / "workflow.blend"
    bpy.ops.wm.save_as_mainfile(filepath=str(blend))
    bpy.ops.wm.open_mainfile(filepath=str(blend))
    head = bpy.data.objects[report["head"]["name"]]
    report["workflow_reloaded"] = {
        "own_curve_kept": 'key_blocks["userSmile"].value' in key_curve_paths(head.data.shape_keys),
        "rig_location": list(head.parent.location),
        "geometry": head.get("faceadapt_geometry")}

    # A second performance, tracked from a movie clip onto a new head at the 3D cursor.
    scene = bpy.context.scene
    clip = bpy.data.movieclips.load(footage)
    for obj in bpy.context.selected_objects:
        obj.select_set(False)
    bpy.context.view_layer.objects.active = None
    scene.cursor.location = (1.0, 0.0, 0.0)
    scene.faceadapt.quality = "preview"
    scene.faceadapt.use_frame_range = True
    scene.faceadapt.frame_first, scene.faceadapt.frame_last = 0, 7
    heads_before = {o.name for o in bpy.data.objects if o.type == "MESH"}
    report["clip_track"] = run_operator("track_footage", clip=clip.name)
    new = [o for o in bpy.data.objects if o.type == "MESH" and o.name not in heads_before]
    report["performances"] = {
        "new_heads": [o.name for o in new],
        "new_rig_location": list(new[0].parent.location) if new else None,
        "cameras": sorted(o.name for o in bpy.data.objects if o.type == "CAMERA"),
        "first_head_geometry": bpy.data.objects[report["head"]["name"]].get("faceadapt_geometry"),
        "first_head_keys": len(bpy.data.objects[report["head"]["name"]].data.shape_keys.key_blocks),
    }
    scene.faceadapt.use_frame_range = False
    scene.faceadapt.quality = "production"


BATCH_FRAMES = 4  # frames each strip of Track Strips plays


def run_track_strips(report: dict, footage: str, workdir_path: Path) -> None:
    """Two short strips of the clip selected and tracked as one batch; a strip whose file is gone
    refused before anything runs."""
    editor = bpy.context.scene.sequence_editor
    for strip in editor.strips_all:
        strip.select = False
    batch_strips = []
    for channel, (name, offset) in enumerate((("take A", 20), ("take/B", 60)), start=3):
        strip = editor.strips.new_movie(name, footage, channel, 200)
        trim(strip, offset, 0)
        first, end = handles(strip)
        trim(strip, offset, end - first - BATCH_FRAMES)
        strip.select = True
        batch_strips.append(strip)
    gone = editor.strips.new_movie("gone", footage, 5, 200)
    gone.filepath = str(workdir_path / "deleted.mp4")
    gone.select = True
    report["track_strips_missing_file"] = run_operator("track_strips", selected_only=True)
    editor.strips.remove(gone)
    heads_before = {o.name for o in bpy.data.objects if o.type == "MESH"}
    report["track_strips"] = run_operator("track_strips", selected_only=True)
    heads = [o for o in bpy.data.objects if o.type == "MESH" and o.name not in heads_before]
    report["strip_heads"] = {
        o.name: {"shape_keys": len(o.data.shape_keys.key_blocks),
                 "rig_key_frames": sorted({int(k.co[0]) for c in o.parent.animation_data.action.layers[0]
                                           .strips[0].channelbags[0].fcurves for k in c.keyframe_points})}
        for o in heads}
    report["strip_scene_frames"] = {s.name: list(handles(s)) for s in batch_strips}
    scene = bpy.context.scene
    report["strip_markers"] = {m.name: [m.frame, m.camera.name if m.camera else None]
                               for m in scene.timeline_markers}
    report["strip_scene_range"] = [scene.frame_start, scene.frame_end]

    # A head from a file (as fit-identity writes): the default head's file, reshaped.
    with np.load(Path(bpy.utils.extension_path_user(MODULE, path="heads")) / "default.npz") as d:
        arrays = {k: d[k] for k in d.files}
    arrays["vertices"] = (arrays["vertices"] * np.array([1.08, 1.0, 0.95])).astype(np.float32)
    actor = workdir_path / "actor.npz"
    np.savez(actor, **arrays)
    report["add_head_from_file"] = run_operator("add_head", filepath=str(actor))
    file_head = bpy.context.active_object
    evaluated = np.array([v.co[:] for v in file_head.data.shape_keys.key_blocks["Basis"].data])
    report["file_head"] = {"max_vertex_difference": float(np.abs(evaluated - arrays["vertices"]).max()),
                           "head_property": str(file_head.get("faceadapt_head"))}
    (workdir_path / "not_a_head.npz").write_text("not an npz")
    report["add_head_bad_file"] = run_operator("add_head", filepath=str(workdir_path / "not_a_head.npz"))
    report["add_head_missing_file"] = run_operator("add_head", filepath=str(workdir_path / "gone.npz"))

    # Make Personal Model from a strip of the clip at a tiny budget: the model in the user's
    # models folder ($FACEADAPT_MODELS, a temp folder here), its head added and chosen.
    take = editor.strips.new_movie("actor take", footage, 6, 400)
    editor.active_strip = take
    report["personal_model_bad_name"] = run_operator("make_personal_model", model_name="a/b")
    report["make_personal_model"] = run_operator("make_personal_model", model_name="actor",
                                                 budget=20.0, expressions=40, encoder_expressions=40,
                                                 shading_steps=20)
    personal_head = bpy.context.active_object
    models = Path(os.environ["FACEADAPT_MODELS"])
    report["personal_model"] = {
        "chosen": bpy.context.scene.faceadapt.model,
        "head_property": str(personal_head.get("faceadapt_head")),
        "models": sorted(p.name for p in models.iterdir()) if models.is_dir() else [],
        "shape_keys": len(personal_head.data.shape_keys.key_blocks)}
    report["personal_model_exists"] = run_operator("make_personal_model", model_name="actor")

    # Make Model From Double: a studio's double of its own topology (the personal head's mesh
    # copied, its triangles joined into quads in Edit Mode; shape keys and texture kept).
    double = personal_head.copy()
    double.data = personal_head.data.copy()
    double.name = "Studio Double"
    double.parent = None
    double.modifiers.clear()
    bpy.context.collection.objects.link(double)
    for obj in bpy.context.selected_objects:
        obj.select_set(False)
    double.select_set(True)
    bpy.context.view_layer.objects.active = double
    bpy.ops.object.mode_set(mode="EDIT")
    bpy.ops.mesh.select_all(action="SELECT")
    bpy.ops.mesh.tris_convert_to_quads()
    bpy.ops.object.mode_set(mode="OBJECT")
    untextured = double.copy()
    untextured.data = double.data.copy()
    untextured.data.materials.clear()
    bpy.context.collection.objects.link(untextured)
    bpy.context.view_layer.objects.active = untextured
    report["double_untextured"] = run_operator("make_double_model", model_name="untextured")
    bpy.ops.mesh.primitive_cube_add()
    report["double_without_keys"] = run_operator("make_double_model", model_name="cube")
    bpy.context.view_layer.objects.active = double
    report["make_double_model"] = run_operator("make_double_model", model_name="double", budget=20.0,
                                               expressions=40, encoder_expressions=40)
    double_head = bpy.context.active_object
    report["double_model"] = {
        "chosen": bpy.context.scene.faceadapt.model,
        "models": sorted(p.name for p in models.iterdir()),
        "double_vertices": len(double.data.vertices),
        "double_quads": sum(len(p.vertices) == 4 for p in double.data.polygons),
        "head_vertices": len(double_head.data.vertices),
        "head_polygons": len(double_head.data.polygons),
        "head_property": str(double_head.get("faceadapt_head")),
        "same_positions": bool(np.allclose(
            [v.co[:] for v in double_head.data.vertices], [v.co[:] for v in double.data.vertices],
            atol=1e-5))}

    # The double's model tracks the strip onto its head as a point cache; that cache, on the double
    # itself (same vertices and order, its object space), plays the tracked performance there.
    scene = bpy.context.scene
    before = (scene.faceadapt.quality, scene.faceadapt.geometry)
    scene.faceadapt.quality, scene.faceadapt.tracker, scene.faceadapt.texture_size = "custom", "encoder", 0
    scene.faceadapt.geometry = "point-cache"
    scene.faceadapt.use_frame_range = True
    scene.faceadapt.frame_first, scene.faceadapt.frame_last = TRIM_START, TRIM_START + 3
    report["track_double"] = run_operator("track_footage")
    results = Path(double_head["faceadapt_results"])
    head_cache = double_head.modifiers["FaceAdapt Cache"]
    cache = double.modifiers.new("Performance", "MESH_CACHE")
    cache.cache_format, cache.filepath = "PC2", head_cache.filepath
    cache.frame_start = head_cache.frame_start
    with np.load(results / "tracking.npz") as tracking:
        frames, vertices = tracking["frames"], tracking["vertices"]
    zero = int(double_head["faceadapt_scene_frame_of_source_zero"])
    rest = np.array([v.co[:] for v in double.data.vertices], np.float32)
    differences, from_rest = [], []
    for row in (0, len(frames) - 1):
        scene.frame_set(zero + int(frames[row]))
        evaluated = double.evaluated_get(bpy.context.evaluated_depsgraph_get())
        mesh = evaluated.to_mesh()
        co = np.empty(len(mesh.vertices) * 3, np.float32)
        mesh.vertices.foreach_get("co", co)
        evaluated.to_mesh_clear()
        differences.append(float(np.abs(co.reshape(-1, 3) - vertices[row]).max()))
        from_rest.append(float(np.abs(vertices[row] - rest).max()))
    report["double_point_cache"] = {
        "frames": len(frames), "cache_file": Path(head_cache.filepath).name,
        "max_vertex_difference_m": max(differences),
        "tracked_vertices_leave_rest_m": min(from_rest)}
    scene.faceadapt.use_frame_range = False
    scene.faceadapt.quality, scene.faceadapt.geometry = before


if __name__ == "__main__":
    run_scenario(main)
