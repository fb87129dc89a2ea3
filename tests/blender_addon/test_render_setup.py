"""blender_addon.render_setup: after the setup, F12 renders the head over its footage.

The Blender side runs in its own process (as the add-on's programs do). The scene has what
would spoil a plain F12: a Video Sequencer colour strip over the whole frame (rendered instead
of the 3D scene while the sequencer is on) and footage smaller than the render (it must be
scaled to fill it). The "head" is an emissive cube, so its colour does not depend on the light.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from png_writer import write_png

from conftest import BLENDER_PYTHON_VARIABLE, LAUNCHER

pytestmark = pytest.mark.blender
pytest.importorskip("bpy")

from faceadapt.blender_addon.render_setup import LIGHT_NAMES, light_rig  # noqa: E402

FOOTAGE = ((220, 40, 40), (40, 60, 220))  # footage frames 0 and 1 (sRGB bytes)
HEAD = (0, 255, 0)  # the emissive cube
CLIP_START = 5  # scene frame of the footage's first frame

SCRIPT = r'''
import importlib.util, json, sys
from pathlib import Path
import bpy
import numpy as np

spec = importlib.util.spec_from_file_location("run_program", sys.argv[1])
launcher = importlib.util.module_from_spec(spec)
spec.loader.exec_module(launcher)
launcher.load_extension_package()
from faceadapt.blender_addon import render_setup as rs

footage, out, clip_start = Path(sys.argv[2]), Path(sys.argv[3]), int(sys.argv[4])
WIDTH, HEIGHT = 40, 30
bpy.ops.wm.read_factory_settings(use_empty=True)
scene = bpy.context.scene

def build(scene):
    scene.render.engine = "CYCLES"
    scene.cycles.device = "CPU"
    scene.cycles.samples = 1
    scene.render.resolution_x, scene.render.resolution_y = WIDTH, HEIGHT
    scene.render.resolution_percentage = 100
    scene.frame_start, scene.frame_end = 1, 20

build(scene)
mesh = bpy.data.meshes.new("Cube")
s = 0.15
mesh.from_pydata([(x, y, z) for x in (-s, s) for y in (-s, s) for z in (-s, s)], [],
                 [(0, 1, 3, 2), (4, 6, 7, 5), (0, 4, 5, 1), (2, 3, 7, 6), (0, 2, 6, 4), (1, 5, 7, 3)])
head = bpy.data.objects.new("Head", mesh)
scene.collection.objects.link(head)
material = bpy.data.materials.new("Glow")
tree = material.node_tree
tree.nodes.clear()
emission = tree.nodes.new("ShaderNodeEmission")
emission.inputs["Color"].default_value = (0, 1, 0, 1)
tree.links.new(emission.outputs["Emission"], tree.nodes.new("ShaderNodeOutputMaterial").inputs["Surface"])
mesh.materials.append(material)
camera = bpy.data.objects.new("FaceAdapt Camera", bpy.data.cameras.new("FaceAdapt Camera"))
camera.location = (0, -2, 0)
camera.rotation_euler = (np.pi / 2, 0, 0)  # looking along +Y at the cube
scene.collection.objects.link(camera)

editor = scene.sequence_editor_create()
strips = editor.strips if hasattr(editor, "strips") else editor.sequences  # 5.0 renamed it
strip = strips.new_effect(name="Cover", type="COLOR", channel=1, frame_start=1, length=20)
strip.color = (1, 1, 0)
clip = bpy.data.movieclips.load(str(footage / "000000.png"))

report = {}

def render(key, frame, scene=scene):
    scene.frame_set(frame)
    scene.render.filepath = str(out / f"{key}.png")
    with bpy.context.temp_override(scene=scene):
        bpy.ops.render.render(write_still=True, scene=scene.name)
    image = bpy.data.images.load(scene.render.filepath)
    pixels = np.array(image.pixels[:]).reshape(HEIGHT, WIDTH, 4) * 255  # rows from the bottom
    bpy.data.images.remove(image)
    report[key] = {"centre": pixels[HEIGHT // 2, WIDTH // 2, :3].tolist(),
                   "corners": pixels[[0, 0, -1, -1], [0, -1, 0, -1], :3].tolist()}

scene.camera = camera
render("before", clip_start)  # the strip, not the scene: what the setup must change
first = rs.setup_render(scene, camera, head, clip, clip_start)
second = rs.setup_render(scene, camera, head, clip, clip_start)
report["first"] = {"lights": first.lights, "world": first.world, "compositor": first.compositor,
                   "changes": first.changes, "warnings": first.warnings}
report["second"] = {"lights": second.lights, "world": second.world,
                    "compositor": second.compositor, "warnings": second.warnings}
report["lights"] = sorted(o.name for o in bpy.data.objects if o.type == "LIGHT")
report["light_data"] = sorted(light.name for light in bpy.data.lights)
report["worlds"] = sorted(w.name for w in bpy.data.worlds)
report["groups"] = sorted(g.name for g in bpy.data.node_groups)
report["settings"] = [scene.render.film_transparent, scene.render.use_sequencer,
                      scene.view_settings.view_transform, scene.render.engine]
render("first_frame", clip_start)
render("second_frame", clip_start + 1)

# A scene compositing with the user's own group: kept, with a warning; restore() undoes.
user = bpy.data.scenes.new("User")
build(user)
user.collection.objects.link(head)
grade = bpy.data.node_groups.new("Grade", "CompositorNodeTree")
if hasattr(user, "compositor_effects"):  # 5.3: a stack of effects
    user.compositor_effects.new("Grade").node_group = grade
else:
    user.compositing_node_group = grade
user_setup = rs.setup_render(user, camera, head, clip, clip_start)
again = rs.setup_render(user, camera, head, clip, clip_start)
if hasattr(user, "compositor_effects"):
    groups = [e.node_group.name for e in user.compositor_effects if e.node_group is not None]
else:
    groups = [user.compositing_node_group.name]
report["user"] = {"warnings": user_setup.warnings, "compositor": user_setup.compositor,
                  "groups": groups, "film_transparent": user.render.film_transparent,
                  "lights": sorted(o.name for o in user.objects if o.type == "LIGHT")}
again.restore()
user_setup.restore()
report["restored"] = {"lights": sorted(o.name for o in user.objects if o.type == "LIGHT"),
                      "camera": user.camera is None, "world": user.world is None,
                      "view": user.view_settings.view_transform,
                      "use_sequencer": user.render.use_sequencer}
print("REPORT " + json.dumps(report))
'''


def test_light_rig_aims_at_the_head_from_the_camera_side() -> None:
    corners = np.array([[x, y, z] for x in (-0.1, 0.1) for y in (-0.1, 0.1) for z in (0.0, 0.3)])
    camera = np.eye(4)
    camera[:3, :3] = [[1, 0, 0], [0, 0, -1], [0, 1, 0]]  # looking along +Y, up +Z
    camera[:3, 3] = [0, -1, 0.15]
    rig = light_rig(corners, camera)
    assert [light.name for light in rig] == list(LIGHT_NAMES)
    centre = corners.mean(0)
    for light in rig:
        aim = -light.matrix[:3, 2]  # an area light shines along its -Z
        to_head = centre - light.matrix[:3, 3]
        np.testing.assert_allclose(aim, to_head / np.linalg.norm(to_head), atol=1e-9)
        np.testing.assert_allclose(light.matrix[:3, :3] @ light.matrix[:3, :3].T, np.eye(3), atol=1e-9)
    key, fill, rim = (light.matrix[:3, 3] - centre for light in rig)
    assert key[1] < 0 and key[0] > 0 and key[2] > 0  # camera side, its right, above
    assert fill[1] < 0 and fill[0] < 0  # camera side, its left
    assert rim[1] > 0  # behind the head
    # Twice the head, twice the distance and size; the same light on the face.
    double = light_rig(corners * 2, camera @ np.diag([2.0, 2, 2, 1]))
    for small, large in zip(rig, double, strict=True):
        assert large.size == pytest.approx(2 * small.size)
        assert large.energy == pytest.approx(4 * small.energy)


def test_f12_renders_the_head_over_the_footage(tmp_path: Path) -> None:
    footage = tmp_path / "footage"
    footage.mkdir()
    for frame, colour in enumerate(FOOTAGE):  # 8x6: smaller than the 40x30 render
        write_png(footage / f"{frame:06d}.png", np.full((6, 8, 3), colour, np.uint8))
    (tmp_path / "renders").mkdir()
    env = {**os.environ, "BLENDER_USER_RESOURCES": str(tmp_path / "blender_user"),
           "HOME": str(tmp_path / "home")}
    python = os.environ.get(BLENDER_PYTHON_VARIABLE) or sys.executable
    run = subprocess.run([python, "-c", SCRIPT, str(LAUNCHER), str(footage), str(tmp_path / "renders"),
                          str(CLIP_START)], env=env, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    report = json.loads(next(line for line in run.stdout.splitlines()
                             if line.startswith("REPORT "))[len("REPORT "):])

    def close(measured: list[float], wanted: tuple[int, int, int], what: str) -> None:
        assert np.abs(np.array(measured) - wanted).max() < 8, f"{what}: {measured} != {wanted}"

    # Before the setup F12 renders the yellow strip (desaturated by AgX), not the green head.
    red, green, blue = report["before"]["centre"]
    assert min(red, green) > 150 > blue, report["before"]
    for key, colour in (("first_frame", FOOTAGE[0]), ("second_frame", FOOTAGE[1])):
        close(report[key]["centre"], HEAD, f"{key}: the head at the centre")
        for corner in report[key]["corners"]:
            close(corner, colour, f"{key}: the footage in every corner")

    first = report["first"]
    assert first["lights"] == list(LIGHT_NAMES)
    assert (first["world"], first["compositor"], first["warnings"]) == (
        "FaceAdapt World", "FaceAdapt Footage", [])
    assert "render.use_sequencer: True -> False" in first["changes"]
    assert "view_settings.view_transform: 'AgX' -> 'Standard'" in first["changes"]
    assert report["second"]["lights"] == list(LIGHT_NAMES)
    # The second setup replaced the first's datablocks: one set, under the plain names.
    assert report["lights"] == sorted(LIGHT_NAMES)
    assert report["light_data"] == sorted(LIGHT_NAMES)
    assert report["worlds"] == ["FaceAdapt World"]
    assert report["groups"] == ["FaceAdapt Footage"]
    assert report["settings"] == [True, False, "Standard", "CYCLES"]

    user = report["user"]
    assert user["compositor"] is None and user["groups"] == ["Grade"]
    assert len(user["warnings"]) == 1 and "'Grade'" in user["warnings"][0]
    assert user["film_transparent"] is False  # nothing would fill a transparent background
    # Names are per file: this scene's rig is named ".001" beside the first scene's, and was
    # replaced by the second setup of this scene all the same.
    assert user["lights"] == sorted(f"{name}.001" for name in LIGHT_NAMES)
    # Undoing both setups of that scene, newest first, gives back the scene as it was.
    assert report["restored"] == {"lights": [], "camera": True, "world": True, "view": "AgX",
                                  "use_sequencer": True}
