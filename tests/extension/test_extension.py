"""The extension as a user gets it: built with Blender's builder, installed into bpy, its
operators run on a real clip placed as a movie strip (extension_scenarios.py), with the backend
run by the backend's own interpreter over the process boundary. Runs in each Blender
environment `make test` knows (bpy 5.0.1 in .venv, bpy 5.3.0 in .venv-blender53)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
from extension_build import build_zip

from conftest import REPO_ROOT
from faceadapt.blender_addon.camera_conversion import intrinsics_from_blender_camera

pytestmark = [pytest.mark.blender, pytest.mark.data]


@pytest.fixture(scope="module")
def extension_zip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_zip(REPO_ROOT, tmp_path_factory.mktemp("dist"))


@pytest.fixture(scope="module")
def report(extension_zip: Path, data_dir: Path, backend_python: Path,
           tmp_path_factory: pytest.TempPathFactory) -> dict:
    work = tmp_path_factory.mktemp("scenarios")
    env = dict(os.environ, BLENDER_USER_RESOURCES=str(work / "blender"),
               FACEADAPT_MODELS=str(work / "models"))
    env.pop("PYTHONPATH", None)
    done = subprocess.run(
        [sys.executable, str(Path(__file__).with_name("extension_scenarios.py")), str(extension_zip),
         str(data_dir / "videos" / "lp_driving_d0.mp4"), str(work / "report.json"), str(work),
         str(backend_python)],
        cwd=work, env=env, capture_output=True, text=True, timeout=1500)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return json.loads((work / "report.json").read_text())


def test_zip_carries_the_extension(extension_zip: Path):
    names = zipfile.ZipFile(extension_zip).namelist()
    for required in ("blender_manifest.toml", "__init__.py", "requirements-backend.lock",
                     "requirements-farm.lock",
                     "blender_addon/registration.py", "blender_addon/run_program.py",
                     "operators/track_footage.py", "backend/formats/protocol.py",
                     "backend/landmarks/mediapipe_to_ibug68.json",
                     "backend/models/default/model.json"):
        assert required in names
    assert not any(n.startswith(("tests/", ".venv/", "docs/")) or "__pycache__" in n for n in names)
    # Only the backend's runtime lock and its farm extra travel: the development and Blender 5.3
    # test locks stay.
    assert "requirements.lock" not in names and "requirements-blender53.lock" not in names


def test_installs_and_enables(report: dict):
    assert report["enabled"]
    assert report["check_backend"]["result"] == ["FINISHED"]


def test_uses_no_api_this_blender_deprecates(report: dict):
    assert report["deprecations"] == []


def test_add_head(report: dict):
    assert report["add_head"]["result"] == ["FINISHED"]
    head = report["head"]
    assert head["shape_keys"] == 53  # Basis + 52 ARKit shapes
    assert head["rig"] and head["material"]
    assert head["neck_cut"]  # the material hides the ragged bottom edge of the neck


def test_add_head_from_a_file(report: dict):
    assert report["add_head_from_file"]["result"] == ["FINISHED"], report["add_head_from_file"]
    assert report["file_head"]["max_vertex_difference"] < 1e-6
    # Track Footage passes the head's own copy in the extension's folder as --head.
    assert report["file_head"]["head_property"].endswith(".npz")
    assert Path(report["file_head"]["head_property"]).is_file()
    for refused, words in (("add_head_bad_file", "cannot be read"),
                           ("add_head_missing_file", "does not exist")):
        assert report[refused]["result"] == ["CANCELLED"] and report[refused]["unchanged"], report[refused]
        assert words in report[refused]["error"], report[refused]["error"]


def test_make_personal_model_adds_the_actors_head_and_chooses_the_model(report: dict):
    assert report["make_personal_model"]["result"] == ["FINISHED"], report["make_personal_model"]
    personal = report["personal_model"]
    assert personal["chosen"] == "actor" and personal["models"] == ["actor"]
    # Its head is the model's own file: Track Footage passes it as --head with --model actor.
    assert personal["head_property"].endswith("models/actor/head.npz")
    assert personal["shape_keys"] == 53


def test_make_model_from_double_keeps_the_doubles_vertices(report: dict):
    for refused, words in (("double_untextured", "no textured material"),
                           ("double_without_keys", "no expression shape keys")):
        assert report[refused]["result"] == ["CANCELLED"] and report[refused]["unchanged"], report[refused]
        assert words in report[refused]["error"], report[refused]["error"]
    assert report["make_double_model"]["result"] == ["FINISHED"], report["make_double_model"]
    made = report["double_model"]
    assert made["chosen"] == "double" and made["models"] == ["actor", "double"]
    assert made["head_property"].endswith("models/double/head.npz")
    # The double's quads became triangles; its vertices, their order and positions stayed.
    assert made["double_quads"] > 0 and made["head_vertices"] == made["double_vertices"]
    assert made["same_positions"] and made["head_polygons"] > made["double_quads"]


def test_a_point_cache_tracked_with_the_doubles_model_plays_on_the_double_itself(report: dict):
    assert report["track_double"]["result"] == ["FINISHED"], report["track_double"]
    cache = report["double_point_cache"]
    assert cache["frames"] == 4 and cache["cache_file"] == "cache.pc2"
    # The tracked vertices are not the double's rest shape, so matching them needs the cache to play
    # (how far two frames of a 20-s model differ from each other depends on the steps it got).
    assert cache["tracked_vertices_leave_rest_m"] > 2e-4, cache  # 20x the tolerance below
    assert cache["max_vertex_difference_m"] < 1e-5, cache


def test_track_footage_imports_onto_the_strip_frames(report: dict):
    assert report["track"]["result"] == ["FINISHED"]
    imported = report["imported"]
    frames = imported["frames"]
    # The strip starts at scene frame 11 with 5 frames trimmed: source 5.. plays at 16..
    assert frames[0] == 5 and report["strip"]["frame_final_start"] == 16
    assert len(frames) == report["strip"]["frame_final_end"] - report["strip"]["frame_final_start"]
    assert imported["shape_keys"] == 53 + len(frames)
    for frame in frames:
        assert imported["frame_key_on"][f'key_blocks["fa_{frame:06d}"].value'] == [11.0 + frame]
    bone_curves = [c for c in imported["bone_curves"] if c.startswith("pose.bones")]
    assert bone_curves == ['pose.bones["eye.L"].rotation_euler', 'pose.bones["eye.R"].rotation_euler',
                           'pose.bones["head"].location', 'pose.bones["head"].rotation_quaternion',
                           'pose.bones["jaw"].rotation_euler']
    # The exact geometry carries the expression: each driven key's base cancels its bone.
    assert '["fa_base_jawOpen"]' in imported["bone_curves"]
    assert imported["bone_key_frames"] == [11 + f for f in frames]


def test_camera_matches_the_results(report: dict):
    imported = report["imported"]
    document = json.loads((Path(report["results_dir"]) / "result.json").read_text())
    cam = imported["camera"]
    width, height = imported["resolution"]
    assert [width, height] == [document["source"]["width"], document["source"]["height"]]
    k = intrinsics_from_blender_camera(cam["lens"], cam["sensor_width"], cam["sensor_height"],
                                       cam["sensor_fit"], *cam["shift"], width, height)
    np.testing.assert_allclose(k, document["intrinsics"], rtol=1e-5, atol=1e-3)
    assert cam["background"] == ["MOVIE_CLIP"]
    assert imported["scene_camera"] == "FaceAdapt Head Camera"


def test_imported_head_overlays_the_footage(report: dict):
    # The imported head's landmarks, projected by the scene camera, land on landmarks_fit.
    for error_px in report["imported"]["overlay_px"].values():
        assert error_px < 0.05


def test_save_and_reload(report: dict):
    reloaded = report["reloaded"]
    assert reloaded["shape_keys"] == report["imported"]["shape_keys"]
    assert reloaded["has_key_action"] and reloaded["rig_action"]
    assert reloaded["scene_camera"] == "FaceAdapt Head Camera"


def test_reimport_replaces_the_previous_import(report: dict):
    assert report["reimport"]["result"] == ["FINISHED"]
    assert report["shape_keys_after_reimport"] == report["imported"]["shape_keys"]
    # Imported twice more: still one camera and one action per animated datablock.
    after = report["after_reimport"]
    assert after["cameras"] == after["camera_objects"] == ["FaceAdapt Head Camera"]
    assert len(after["actions"]) == 2, after["actions"]


def test_track_strips_imports_each_strip_onto_a_head_of_its_own(report: dict):
    assert report["track_strips"]["result"] == ["FINISHED"], report["track_strips"]["error"]
    heads = report["strip_heads"]
    assert sorted(heads) == ["FaceAdapt take A", "FaceAdapt take/B"]  # the strips' names
    for head, strip in zip(sorted(heads), ("take A", "take/B"), strict=True):
        first, end = report["strip_scene_frames"][strip]
        assert end - first == 4
        assert heads[head]["shape_keys"] == 53 + 4
        assert heads[head]["rig_key_frames"] == list(range(first, end))
        # Its own camera, made the scene's from its first frame by a camera marker.
        assert report["strip_markers"][head] == [first, f"{head} Camera"]
    starts, ends = zip(*report["strip_scene_frames"].values(), strict=True)
    assert report["strip_scene_range"] == [min(starts), max(ends) - 1]


def test_the_panels_show_what_will_happen(report: dict):
    labels, operators = report["panels"]["labels"], report["panels"]["operators"]
    frames = report["strip"]["frame_final_end"] - report["strip"]["frame_final_start"]
    assert "Head: FaceAdapt Head" in labels and "Footage: strip 'performance'" in labels
    assert f"Exact geometry for {frames} frames: Shape Key per Frame" in labels
    assert any(label.startswith("Production: Adapted") for label in labels)
    for name in ("faceadapt.track_footage", "faceadapt.import_results", "faceadapt.bake_for_camera",
                 "faceadapt.retarget_shape_keys", "faceadapt.export_facs_csv"):
        assert name in operators
    # The Results Folders sub-panel lists the tracked results with an Import and a Remove.
    assert "faceadapt.remove_results" in operators


def test_every_geometry_mode_matches_the_results(report: dict):
    modes = report["modes"]
    for mode, outcome in modes.items():
        assert outcome["result"] == ["FINISHED"], (mode, outcome["error"])
        # A user's own keyed shape key survives every re-import.
        assert outcome["own_curve_kept"], mode
    for exact in ("shape-keys", "point-cache"):
        assert modes[exact]["max_vertex_difference_m"] < 2e-5, exact
        assert modes[exact]["reported_error_m"] == [0.0, 0.0]
    for approximate in ("arkit", "compact"):
        mean, largest = modes[approximate]["reported_error_m"]
        assert 0 < mean <= largest
        assert modes[approximate]["max_vertex_difference_m"] <= largest + 2e-5, approximate
    assert modes["compact"]["reported_error_m"][1] <= 0.0002 + 1e-6  # the 0.2 mm tolerance
    assert modes["point-cache"]["cache_modifier"] and not modes["arkit"]["cache_modifier"]
    # ARKit curves and the point cache add no shape keys (Basis, 52 ARKit, the user's own).
    assert modes["arkit"]["shape_keys"] == modes["point-cache"]["shape_keys"] == 54


def test_textures_play_on_the_head(report: dict):
    texture = report["texture_node"]
    assert texture["source"] == "SEQUENCE"
    # The default tracker decodes view-dependent textures: those are shown first.
    assert "/textures/footage/" in texture["image"]
    assert report["texture_view_projected"]["result"] == ["FINISHED"]
    assert "/textures/projected/" in report["texture_node_projected"]
    assert report["texture_view_albedo"]["result"] == ["FINISHED"]
    assert not report["texture_node_albedo"]


def test_bake_for_camera_decodes_textures_for_another_camera(report: dict):
    # The camera file of the head's own camera reproduces the tracked head poses.
    assert report["camera_file_pose_difference"] < 1e-4
    assert report["bake_for_camera"]["result"] == ["FINISHED"], report["bake_for_camera"]["error"]
    assert "/textures/Side_Camera/" in report["baked_texture"]


def test_a_moved_rig_keeps_its_offset_and_its_camera(report: dict):
    assert report["moved_rig"]["result"] == ["FINISHED"]
    np.testing.assert_allclose(report["moved_rig_location"], [0.4, -0.2, 0.1], atol=1e-6)
    assert report["moved_rig_overlay_px"] < 0.05
    np.testing.assert_allclose(report["workflow_reloaded"]["rig_location"], [0.4, -0.2, 0.1],
                               atol=1e-6)
    assert report["workflow_reloaded"]["own_curve_kept"]


def test_posing_the_jaw_bone_opens_the_mouth(report: dict):
    jaw = report["jaw_pose"]
    assert jaw["chin_drop_m"] > 0.002, jaw


def test_a_second_performance_from_a_movie_clip_coexists(report: dict):
    assert report["clip_track"]["result"] == ["FINISHED"], report["clip_track"]["error"]
    performances = report["performances"]
    assert len(performances["new_heads"]) == 1
    np.testing.assert_allclose(performances["new_rig_location"], [1.0, 0.0, 0.0], atol=1e-6)
    new_camera = f"{performances['new_heads'][0]} Camera"
    assert {"FaceAdapt Head Camera", new_camera} <= set(performances["cameras"])
    assert performances["first_head_geometry"] == "shape-keys"


@pytest.mark.parametrize(("scenario", "words"), [
    ("track_without_head", "make a movie strip active"),
    ("track_in_edit_mode", "Edit Mode: switch to Object Mode"),
    ("interpreter_folder", "is a folder: name the Python executable inside it"),
    ("relative_interpreter_unsaved", "relative to the .blend, which is not saved yet"),
    ("unwritable_output", "cannot create the output folder"),
    ("edited_topology", "no longer has the topology of its head"),
    ("linked_head", "is linked from"),
    ("track_without_strip", "make a movie strip active"),
    ("track_colour_strip", "is a COLOR strip, not a movie"),
    ("missing_interpreter", "does not exist"),
    ("broken_interpreter", "No module named torch"),
    ("broken_check", "cannot import the backend's packages"),
    ("killed_mid_run", "without a result"),
    ("other_topology", "tracked on a head with"),
    ("missing_texture_frame", "lacks the textures of 1 frame(s): 5"),
    ("install_backend_offline", "needs internet access"),
    ("track_strips_missing_file", "deleted.mp4) does not exist"),
    ("personal_model_bad_name", "use letters, digits"),
    ("personal_model_exists", "a model named 'actor' exists"),
])
def test_failures_are_reported_and_change_nothing(report: dict, scenario: str, words: str):
    outcome = report[scenario]
    assert outcome["result"] == ["CANCELLED"]
    assert words in outcome["error"]
    assert outcome["unchanged"], f"{scenario} changed the scene"
