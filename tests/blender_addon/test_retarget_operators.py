"""Retarget onto Selected, Bake Head Pose to Bone, Export FACS CSV and the results folders, run
in a bpy process (as the extension runs) on a FaceAdapt head whose results directory holds a
known weight track and known head yaws.

The scenario writes a small synthetic results directory with the file-format core's writers,
marks it as imported onto the head (the head's custom properties, as Import Results leaves
them) and reports what each operator did; the assertions are here.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import BLENDER_PYTHON_VARIABLE, LAUNCHER

pytestmark = pytest.mark.blender

OBSERVATIONS = Path(__file__).resolve().parents[1] / "extension"
FRAMES = 12
FIRST_SOURCE_FRAME = 5
SOURCE_ZERO = 20  # scene frame of source frame 0
FPS = 25.0
t = np.arange(FRAMES)
JAW = 0.9 * np.sin(t / (FRAMES - 1) * math.pi / 2)  # a ramp from 0 to 0.9
BLINK_LEFT = np.where(t % 4 < 2, 0.0, 1.0)  # steps
BLINK_RIGHT = np.full(FRAMES, 0.3)
SMILE_LEFT = np.linspace(0.2, 0.6, FRAMES)  # the target's mySmile must not take it
YAW_DEGREES = 30 * np.sin(t / FRAMES * 2 * math.pi)  # degrees about the head's up axis

SCRIPT = r'''
import importlib.util, json, shutil, sys, types
from pathlib import Path

launcher_path, observations, work, track_json = sys.argv[1:5]
spec = importlib.util.spec_from_file_location("run_program", launcher_path)
launcher = importlib.util.module_from_spec(spec)
spec.loader.exec_module(launcher)
launcher.load_extension_package()
sys.path.insert(0, observations)

import bpy
import numpy as np
from bpy_extras import anim_utils
from mathutils import Matrix

import faceadapt
from scenario_observations import run_operator, run_scenario, snapshot

work = Path(work)
track = json.loads(track_json)


def curves(owner):
    """{(data_path, index): [(frame, value), ...]} of the F-curves of owner's action slot."""
    animation = owner.animation_data
    if animation is None or animation.action is None:
        return {}
    bag = anim_utils.action_get_channelbag_for_slot(animation.action, animation.action_slot)
    return {f"{c.data_path}[{c.array_index}]": [list(k.co) for k in c.keyframe_points]
            for c in bag.fcurves}


class FakeLayout:
    """Records what draw_results_folders draws."""

    def __init__(self, log):
        self.log, self.operator_context = log, "INVOKE_DEFAULT"

    def column(self, **_):
        return FakeLayout(self.log)

    row = box = column

    def label(self, text="", icon="NONE"):
        self.log.append({"label": text, "icon": icon})

    def operator(self, idname, text="", icon="NONE"):
        props = types.SimpleNamespace()
        self.log.append({"operator": idname, "text": text, "context": self.operator_context,
                         "props": props})
        return props


def drawn(folder):
    from faceadapt.blender_addon.results_panel import draw_results_folders

    log = []
    draw_results_folders(FakeLayout(log), bpy.context, folder)
    for item in log:
        if "props" in item:
            item["props"] = vars(item["props"])
    return log


def main():
    from faceadapt.backend.formats.head_file import load_head
    from faceadapt.backend.formats.results_dir import TrackingArrays, write_arrays, write_summary
    from faceadapt.backend.heads.arkit import ARKIT_NAMES
    from faceadapt.blender_addon import backend_job, results_listing
    from faceadapt.blender_addon.facs_csv import FACING_CAMERA
    from faceadapt.blender_addon.head_builder import MODEL_HEAD, build_head
    from faceadapt.blender_addon.scene_import import RESULTS_PROPERTY, SOURCE_ZERO_PROPERTY
    from faceadapt.operators.export_facs import FACEADAPT_OT_export_facs_csv
    from faceadapt.operators.results_folders import FACEADAPT_OT_remove_results
    from faceadapt.operators.retarget import (
        FACEADAPT_OT_bake_head_pose, FACEADAPT_OT_retarget_shape_keys)

    bpy.ops.wm.read_factory_settings(use_empty=True)
    faceadapt.register()
    for cls in (FACEADAPT_OT_retarget_shape_keys, FACEADAPT_OT_bake_head_pose,
                FACEADAPT_OT_export_facs_csv, FACEADAPT_OT_remove_results):
        if not getattr(cls, "is_registered", False):  # until registration.py lists them
            bpy.utils.register_class(cls)
    scene = bpy.context.scene
    report = {}

    # A results directory with the known track, as `python -m backend track` writes one.
    head_asset = load_head(MODEL_HEAD)
    frames = np.arange(track["first"], track["first"] + track["count"])
    poses = np.tile(np.eye(4), (len(frames), 1, 1))
    for i, yaw in enumerate(np.radians(track["yaw_degrees"])):
        spin = np.array([[np.cos(yaw), -np.sin(yaw), 0], [np.sin(yaw), np.cos(yaw), 0], [0, 0, 1]])
        poses[i, :3, :3] = FACING_CAMERA @ spin
        poses[i, :3, 3] = [0.01 * i, -0.005 * i, 0.6 + 0.002 * i]
    weights = np.zeros((len(frames), len(ARKIT_NAMES)), np.float32)
    for name, values in track["weights"].items():
        weights[:, ARKIT_NAMES.index(name)] = values
    out = work / "out"
    results = out / "shot-1"
    results.mkdir(parents=True)
    count = len(frames)
    write_arrays(results, TrackingArrays(
        frames=frames, vertices=np.tile(head_asset.vertices, (count, 1, 1)), head_pose=poses,
        intrinsics=np.array([[800.0, 0, 320], [0, 800, 240], [0, 0, 1]]),
        confidence=np.ones(count), landmarks_2d=np.zeros((count, 68, 2)),
        landmarks_conf=np.ones((count, 68)), landmarks_fit=np.zeros((count, 68, 2)),
        optional={"weights": weights, "weight_names": np.array(ARKIT_NAMES, dtype=str)}),
        head_asset)
    write_summary(results, {"source": {
        "path": "/footage/clip.mp4", "fps": track["fps"], "width": 640, "height": 480,
        "frame_range": [int(frames[0]), int(frames[-1])], "frame_count": 100}}, head_asset)
    report["head_pose"] = poses.tolist()
    report["weights_stored"] = {name: weights[:, ARKIT_NAMES.index(name)].tolist()
                                for name in track["weights"]}

    head = build_head(bpy.context, MODEL_HEAD, "default")
    rig = head.parent

    def make_head_active(*others):
        for obj in bpy.context.view_layer.objects:
            obj.select_set(False)
        for obj in (head, *others):
            obj.select_set(True)
        bpy.context.view_layer.objects.active = head

    # No results imported onto the head yet: refused, nothing changed.
    bpy.ops.mesh.primitive_uv_sphere_add(segments=12, ring_count=8)
    sphere = bpy.context.active_object
    sphere.name = "Target"
    sphere.shape_key_add(name="Basis", from_mix=False)
    for name in ("jawOpen", "EyeBlink_L", "eye_blink_right", "mySmile"):
        sphere.shape_key_add(name=name, from_mix=False)
    smile = sphere.data.shape_keys.key_blocks["mySmile"]
    for frame, value in ((1, 0.2), (30, 0.9)):  # the user's own animation
        smile.value = value
        smile.keyframe_insert("value", frame=frame)
    user_curves = curves(sphere.data.shape_keys)
    make_head_active(sphere)
    report["retarget_no_results"] = run_operator("retarget_shape_keys")
    report["bake_no_results"] = run_operator("bake_head_pose", armature=rig.name, bone="head")
    report["export_no_results"] = run_operator("export_facs_csv", filepath=str(work / "x.csv"))
    report["no_results_csv_written"] = (work / "x.csv").exists()

    head[RESULTS_PROPERTY] = str(results)
    head[SOURCE_ZERO_PROPERTY] = track["source_zero"]
    scene_frames = [int(f) + track["source_zero"] for f in frames]
    report["scene_frames"] = scene_frames

    # (a) Retarget onto the sphere.
    report["retarget"] = run_operator("retarget_shape_keys")
    blocks = sphere.data.shape_keys.key_blocks

    def sample(names):
        values = {name: [] for name in names}
        for frame in scene_frames:
            scene.frame_set(frame)
            for name in names:
                values[name].append(blocks[name].value)
        return values

    keyed = ("jawOpen", "EyeBlink_L", "eye_blink_right")
    report["retarget_values"] = sample(keyed)
    scene.frame_set(30)
    report["smile_at_30"] = smile.value
    after = curves(sphere.data.shape_keys)
    report["user_curves_before"] = user_curves
    report["user_curves_after"] = {k: v for k, v in after.items() if k in user_curves}
    report["target_curves"] = sorted(after)
    report["retarget_report"] = json.loads(sphere["faceadapt_retarget_report"])
    report["head_action_after_retarget"] = sorted(curves(head.data.shape_keys))
    # Again with bounds and smoothing: our channels replaced, not added to.
    report["retarget_bounded"] = run_operator("retarget_shape_keys", lower=0.1, upper=0.5)
    report["bounded_values"] = sample(keyed)
    report["bounded_curves"] = sorted(curves(sphere.data.shape_keys))
    report["bounded_report"] = json.loads(sphere["faceadapt_retarget_report"])
    report["retarget_smoothed"] = run_operator("retarget_shape_keys", smoothing=3)
    report["smoothed_values"] = sample(keyed)
    report["retarget_bad_bounds"] = run_operator("retarget_shape_keys", lower=0.8, upper=0.2)

    # No shape key named like a channel: refused, nothing changed.
    bpy.ops.mesh.primitive_cube_add()
    cube = bpy.context.active_object
    cube.shape_key_add(name="Basis", from_mix=False)
    cube.shape_key_add(name="frown", from_mix=False)
    make_head_active(cube)
    report["retarget_no_match"] = run_operator("retarget_shape_keys")
    report["cube_animation"] = cube.data.shape_keys.animation_data is not None

    # (b) Bake the head pose onto a bone pointing along +X of a separate armature.
    armature = bpy.data.objects.new("Character", bpy.data.armatures.new("Character"))
    scene.collection.objects.link(armature)
    armature.location = (2.0, 1.0, 0.5)
    bpy.context.view_layer.objects.active = armature
    bpy.ops.object.mode_set(mode="EDIT")
    bone = armature.data.edit_bones.new("Skull")
    bone.head, bone.tail, bone.roll = (0.5, 0.0, 1.0), (0.8, 0.0, 1.0), 0.4
    bpy.ops.object.mode_set(mode="OBJECT")
    pose_bone = armature.pose.bones["Skull"]
    pose_bone.rotation_mode = "XYZ"
    pose_bone.location = (0.0, 0.0, 0.0)
    pose_bone.keyframe_insert("location", frame=1)  # the user's own location keys
    make_head_active(armature)
    report["bake_missing_bone"] = run_operator("bake_head_pose", armature="Character", bone="Nope")
    report["bake_not_armature"] = run_operator("bake_head_pose", armature=sphere.name, bone="x")
    report["bake"] = run_operator("bake_head_pose", armature="Character", bone="Skull")
    report["bone_rotation_mode"] = pose_bone.rotation_mode

    def bone_world():
        matrices = []
        for frame in scene_frames:
            scene.frame_set(frame)
            matrices.append([list(row) for row in armature.matrix_world @ pose_bone.matrix])
        return matrices

    report["bone_world"] = bone_world()
    report["bone_curves"] = sorted(curves(armature))
    report["bake_location"] = run_operator("bake_head_pose", armature="Character", bone="Skull",
                                           location=True)
    report["bone_world_location"] = bone_world()

    # (c) Live Link Face CSV.
    make_head_active()
    csv = work / "take.csv"
    report["export"] = run_operator("export_facs_csv", filepath=str(work / "take"))
    report["csv"] = csv.read_text() if csv.exists() else None

    # (d) The results folders: listed with their size; Remove only removes FaceAdapt's own.
    scene.faceadapt.output_folder = str(out)
    folder = backend_job.results_folder(bpy.context)
    report["folder"] = str(folder)
    report["size"] = results_listing.human_size(
        sum(p.stat().st_size for p in results.rglob("*") if p.is_file()))
    report["drawn"] = drawn(folder)
    foreign = out / "notes"
    foreign.mkdir()
    (foreign / "todo.txt").write_text("mine")
    report["remove_foreign"] = run_operator("remove_results", directory=str(foreign))
    report["foreign_kept"] = (foreign / "todo.txt").exists()
    spoiled = out / "shot-spoiled"
    shutil.copytree(results, spoiled)
    (spoiled / "my_notes.txt").write_text("mine")
    report["remove_spoiled"] = run_operator("remove_results", directory=str(spoiled))
    report["spoiled_kept"] = sorted(p.name for p in spoiled.iterdir())
    copy = out / "shot-copy"
    shutil.copytree(results, copy)
    report["drawn_before_removal"] = [i["label"] for i in drawn(folder) if "label" in i]
    report["remove_copy"] = run_operator("remove_results", directory=str(copy))
    report["copy_exists"] = copy.exists()
    report["drawn_after_removal"] = [i["label"] for i in drawn(folder) if "label" in i]
    report["drawn_empty"] = drawn(work / "nothing-here")
    print("REPORT " + json.dumps(report))


run_scenario(main)
'''


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> dict:
    work = tmp_path_factory.mktemp("retarget")
    track = {"first": FIRST_SOURCE_FRAME, "count": FRAMES, "source_zero": SOURCE_ZERO, "fps": FPS,
             "yaw_degrees": YAW_DEGREES.tolist(),
             "weights": {"jawOpen": JAW.tolist(), "eyeBlinkLeft": BLINK_LEFT.tolist(),
                         "eyeBlinkRight": BLINK_RIGHT.tolist(), "mouthSmileLeft": SMILE_LEFT.tolist()}}
    env = {**os.environ, "BLENDER_USER_RESOURCES": str(work / "blender_user"),
           "HOME": str(work / "home")}
    python = os.environ.get(BLENDER_PYTHON_VARIABLE) or sys.executable
    run = subprocess.run([python, "-c", SCRIPT, str(LAUNCHER), str(OBSERVATIONS), str(work),
                          json.dumps(track)],
                         env=env, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    line = next(line for line in run.stdout.splitlines() if line.startswith("REPORT "))
    return json.loads(line[len("REPORT "):])


def refused(outcome: dict, message: str) -> None:
    assert outcome["result"] == ["CANCELLED"], outcome
    assert message in (outcome["error"] or ""), outcome
    assert outcome["unchanged"], outcome


def test_without_imported_results_everything_is_refused(report: dict) -> None:
    for name in ("retarget_no_results", "bake_no_results", "export_no_results"):
        refused(report[name], "import results onto the head first")
    assert not report["no_results_csv_written"]


def test_retarget_keys_the_matched_shape_keys_with_the_tracked_weights(report: dict) -> None:
    assert report["retarget"]["result"] == ["FINISHED"], report["retarget"]
    assert report["scene_frames"] == list(range(SOURCE_ZERO + FIRST_SOURCE_FRAME,
                                                SOURCE_ZERO + FIRST_SOURCE_FRAME + FRAMES))
    values = report["retarget_values"]
    stored = report["weights_stored"]  # float32, as tracking.npz holds them
    np.testing.assert_allclose(values["jawOpen"], JAW, atol=1e-5)
    np.testing.assert_allclose(values["jawOpen"], stored["jawOpen"], atol=1e-6)
    np.testing.assert_allclose(values["EyeBlink_L"], BLINK_LEFT, atol=1e-5)
    np.testing.assert_allclose(values["eye_blink_right"], BLINK_RIGHT, atol=1e-5)
    table = report["retarget_report"]
    assert [(row["channel"], row["shape_key"]) for row in table["matched"]] == [
        ("jawOpen", "jawOpen"), ("eyeBlinkLeft", "EyeBlink_L"), ("eyeBlinkRight", "eye_blink_right")]
    assert table["unmatched_shape_keys"] == ["mySmile"]
    assert "mouthSmileLeft" in table["unmatched_channels"] and len(table["unmatched_channels"]) == 49
    assert table["results"].endswith("shot-1")
    # The user's own mySmile animation is still there, as it was; the head was not touched.
    assert report["user_curves_after"] == report["user_curves_before"]
    assert report["smile_at_30"] == pytest.approx(0.9)
    assert report["target_curves"] == sorted(['key_blocks["mySmile"].value[0]',
                                              'key_blocks["jawOpen"].value[0]',
                                              'key_blocks["EyeBlink_L"].value[0]',
                                              'key_blocks["eye_blink_right"].value[0]'])
    assert report["head_action_after_retarget"] == []


def test_retarget_bounds_clamp_and_a_rerun_replaces_its_own_channels(report: dict) -> None:
    assert report["retarget_bounded"]["result"] == ["FINISHED"]
    values = report["bounded_values"]
    np.testing.assert_allclose(values["jawOpen"], np.clip(JAW, 0.1, 0.5), atol=1e-5)
    np.testing.assert_allclose(values["EyeBlink_L"], np.clip(BLINK_LEFT, 0.1, 0.5), atol=1e-5)
    np.testing.assert_allclose(values["eye_blink_right"], 0.3, atol=1e-5)
    assert report["bounded_curves"] == report["target_curves"]
    rows = {row["shape_key"]: row for row in report["bounded_report"]["matched"]}
    assert rows["jawOpen"]["clamped_frames"] == int(((JAW < 0.1) | (JAW > 0.5)).sum())
    assert (rows["jawOpen"]["lower"], rows["jawOpen"]["upper"]) == pytest.approx((0.1, 0.5))
    # A centred average of 3 tracked frames, cut short at the ends.
    smoothed = [np.mean(JAW[max(i - 1, 0):i + 2]) for i in range(FRAMES)]
    np.testing.assert_allclose(report["smoothed_values"]["jawOpen"], smoothed, atol=1e-5)
    refused(report["retarget_bad_bounds"], "above its upper bound")


def test_retarget_without_any_matching_key_changes_nothing(report: dict) -> None:
    refused(report["retarget_no_match"], "is named like an ARKit channel")
    assert not report["cube_animation"]


def rotation_z(radians: float) -> np.ndarray:
    c, s = math.cos(radians), math.sin(radians)
    return np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]])


def test_bake_turns_a_bone_along_x_as_the_head_yaws(report: dict) -> None:
    assert report["bake"]["result"] == ["FINISHED"], report["bake"]
    for name, message in (("bake_missing_bone", "has no bone 'Nope'"),
                          ("bake_not_armature", "is no armature")):
        refused(report[name], message)
    assert report["bone_rotation_mode"] == "QUATERNION"
    world = np.array(report["bone_world"])
    first = world[0]
    for frame, matrix in enumerate(world):
        change = matrix[:3, :3] @ first[:3, :3].T
        wanted = rotation_z(math.radians(YAW_DEGREES[frame] - YAW_DEGREES[0]))
        np.testing.assert_allclose(change, wanted, atol=1e-5)
        np.testing.assert_allclose(matrix[:3, 3], [2.5, 1.0, 1.5], atol=1e-6)  # turns in place
    # The user's location keys survive a bake without location.
    assert report["bone_curves"] == sorted(
        [f'pose.bones["Skull"].rotation_quaternion[{i}]' for i in range(4)]
        + [f'pose.bones["Skull"].location[{i}]' for i in range(3)])


def test_bake_with_location_moves_the_bone_as_the_pivot_moved(report: dict) -> None:
    assert report["bake_location"]["result"] == ["FINISHED"]
    poses = np.array(report["head_pose"])
    motion = np.linalg.inv(poses[0]) @ poses
    world = np.array(report["bone_world_location"])
    np.testing.assert_allclose(world[:, :3, 3] - world[0, :3, 3], motion[:, :3, 3], atol=1e-5)
    np.testing.assert_allclose(world[:, :3, :3], np.array(report["bone_world"])[:, :3, :3],
                               atol=1e-6)


def test_facs_csv_holds_the_tracked_weights_and_yaw(report: dict) -> None:
    assert report["export"]["result"] == ["FINISHED"], report["export"]
    lines = report["csv"].splitlines()
    header = lines[0].split(",")
    assert header[:2] == ["Timecode", "BlendshapeCount"] and len(header) == 63
    rows = [line.split(",") for line in lines[1:]]
    assert len(rows) == FRAMES
    column = {name: [float(row[header.index(name)]) for row in rows] for name in header[2:]}
    np.testing.assert_allclose(column["JawOpen"], JAW, atol=1e-6)
    np.testing.assert_allclose(column["EyeBlinkLeft"], BLINK_LEFT, atol=1e-6)
    np.testing.assert_allclose(column["MouthSmileLeft"], SMILE_LEFT, atol=1e-6)
    np.testing.assert_allclose(column["HeadYaw"], np.radians(YAW_DEGREES), atol=1e-5)
    np.testing.assert_allclose(column["HeadPitch"], 0, atol=1e-5)
    assert rows[0][0] == "00:00:00:05.000"  # source frame 5 at 25 fps
    assert rows[-1][0] == f"00:00:00:{FIRST_SOURCE_FRAME + FRAMES - 1:02d}.000"


def test_results_folders_are_listed_and_only_faceadapts_removed(report: dict) -> None:
    assert report["folder"].endswith("out")
    drawn = report["drawn"]
    labels = [item["label"] for item in drawn if "label" in item]
    assert labels == ["shot-1", f"{FRAMES} frames · clip.mp4 · {report['size']}"]
    assert next(i for i in drawn if i.get("label") == "shot-1")["icon"] == "CHECKMARK"  # imported
    buttons = [(i["operator"], i["context"], i["props"]) for i in drawn if "operator" in i]
    directory = str(Path(report["folder"]) / "shot-1")
    # Import takes the panel's Geometry and Set Up Render (defaults: ARKit curves, on).
    imported = {"directory": directory, "geometry": "arkit", "setup_render": True}
    assert buttons == [("faceadapt.import_results", "EXEC_DEFAULT", imported),
                       ("faceadapt.remove_results", "INVOKE_DEFAULT", {"directory": directory})]
    refused(report["remove_foreign"], "is not removed")
    assert report["foreign_kept"]
    refused(report["remove_spoiled"], "my_notes.txt")
    assert "my_notes.txt" in report["spoiled_kept"] and "tracking.npz" in report["spoiled_kept"]
    assert "shot-copy" in report["drawn_before_removal"]
    assert report["remove_copy"]["result"] == ["FINISHED"]
    assert not report["copy_exists"]
    assert "shot-copy" not in report["drawn_after_removal"]  # listed afresh at once
    assert [i["label"] for i in report["drawn_empty"]] == [
        f"No results in {Path(report['folder']).parent / 'nothing-here'}"]
