"""blender_addon.texture_sequence: a results directory's per-frame textures on the head's
material, checked by rendering (Cycles) which file shows at which scene frame.

The Blender side runs in its own process (as the add-on's programs do): a flat plane under a
uniform white world renders its albedo exactly, so each pixel tells which texture it shows.
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

from faceadapt.blender_addon.texture_sequence import sequence_timing  # noqa: E402

ALBEDO = (128, 128, 128)  # the plane material's own base colour (sRGB bytes)
PROJECTED = {5: (200, 40, 40), 6: (40, 200, 40), 7: (40, 40, 220)}  # source frame -> colour
FOOTAGE = {5: (230, 200, 30), 6: (30, 200, 230), 7: (200, 30, 230)}
SOURCE_ZERO = 11  # scene frame of source frame 0
SIZE = 32

SCRIPT = r'''
import importlib.util, json, sys
from pathlib import Path
import bpy
import numpy as np

spec = importlib.util.spec_from_file_location("run_program", sys.argv[1])
launcher = importlib.util.module_from_spec(spec)
spec.loader.exec_module(launcher)
launcher.load_extension_package()
from faceadapt.blender_addon import texture_sequence as ts

results, out = Path(sys.argv[2]), Path(sys.argv[3])
size, source_zero = int(sys.argv[4]), int(sys.argv[5])
bpy.ops.wm.read_factory_settings(use_empty=True)
scene = bpy.context.scene
scene.render.engine = "CYCLES"
scene.cycles.device = "CPU"
scene.cycles.samples = 2
scene.render.resolution_x = scene.render.resolution_y = size
scene.render.resolution_percentage = 100
scene.view_settings.view_transform = "Standard"  # the file's sRGB bytes come back as they were
world = bpy.data.worlds.new("White")
world.node_tree.nodes["Background"].inputs["Color"].default_value = (1, 1, 1, 1)
scene.world = world

mesh = bpy.data.meshes.new("Plane")  # fills the orthographic camera's view, UV = image
mesh.from_pydata([(-1, -1, 0), (1, -1, 0), (1, 1, 0), (-1, 1, 0)], [], [(0, 1, 2, 3)])
mesh.uv_layers.new(name="UVMap").data.foreach_set("uv", [0, 0, 1, 0, 1, 1, 0, 1])
plane = bpy.data.objects.new("Plane", mesh)
scene.collection.objects.link(plane)
material = bpy.data.materials.new("Skin")
bsdf = material.node_tree.nodes["Principled BSDF"]
bsdf.inputs["Base Color"].default_value = (0.2158605, 0.2158605, 0.2158605, 1)  # sRGB 128
bsdf.inputs["Roughness"].default_value = 1.0
bsdf.inputs["Specular IOR Level"].default_value = 0.0
mesh.materials.append(material)
camera = bpy.data.objects.new("Camera", bpy.data.cameras.new("Camera"))
camera.data.type = "ORTHO"
camera.data.ortho_scale = 2.0
camera.location = (0, 0, 1)  # looking down -Z at the plane
scene.collection.objects.link(camera)
scene.camera = camera

report = {}

def render(key, frame):
    scene.frame_set(frame)
    scene.render.filepath = str(out / f"{key}.png")
    bpy.ops.render.render(write_still=True)
    image = bpy.data.images.load(scene.render.filepath)
    pixels = np.array(image.pixels[:]).reshape(size, size, 4)  # rows from the bottom
    bpy.data.images.remove(image)
    row = pixels[size // 2, :, :3] * 255
    report[key] = {"centre": row[size // 2].tolist(), "left": row[2].tolist()}

for view in ("footage", "projected", "projected"):
    ts.attach_texture_sequence(material, results, np.array([5, 6, 7]), source_zero, view)
nodes = material.node_tree.nodes
report["nodes"] = sorted(n.name for n in nodes if n.name.startswith("FaceAdapt"))
report["images"] = sorted(i.name for i in bpy.data.images if i.get(ts.TEXTURE_TAG))
report["views"] = ts.texture_views(results)
for frame in (16, 18, 15, 20):
    render(f"projected{frame}", frame)
ts.set_texture_view(material, "footage")
render("footage17", 17)
ts.set_texture_view(material, "albedo")
render("albedo17", 17)
report["albedo_nodes"] = sorted(n.name for n in nodes if n.name.startswith("FaceAdapt"))
report["albedo_linked"] = bsdf.inputs["Base Color"].is_linked
report["albedo_images"] = [i.name for i in bpy.data.images if i.get(ts.TEXTURE_TAG)]
errors = []
for call in (lambda: ts.attach_texture_sequence(material, results, np.array([5, 6, 8]), 0,
                                                "projected"),
             lambda: ts.set_texture_view(material, "decoded")):
    try:
        call()
    except ValueError as exc:
        errors.append(str(exc))
report["errors"] = errors
report["view_after_errors"] = material[ts.TEXTURE_TAG]["view"]
print("REPORT " + json.dumps(report))
'''


def blender_frame(timing: tuple[int, ...], scene_frame: int) -> int:
    """The file number Blender's image user shows at `scene_frame` (BKE_image_user_frame_get,
    not cyclic): the rule sequence_timing is written against."""
    _, _, start, duration, offset = timing
    return min(max(scene_frame - start + 1, 0), duration) + offset


@pytest.mark.parametrize(("frames", "source_zero"), [([5, 6, 7], 11), ([0, 1], 1), ([3, 4, 5, 6], -2)])
def test_timing_shows_each_source_frame_and_holds_the_ends(frames: list[int], source_zero: int) -> None:
    timing = sequence_timing(np.array(frames), source_zero)
    assert (timing.first, timing.count) == (frames[0], len(frames))
    for scene_frame in range(source_zero + frames[0] - 3, source_zero + frames[-1] + 4):
        wanted = min(max(scene_frame - source_zero, frames[0]), frames[-1])
        assert blender_frame(timing, scene_frame) == wanted, scene_frame


def test_frames_must_be_contiguous() -> None:
    with pytest.raises(ValueError, match="12 is followed by 15"):
        sequence_timing(np.array([10, 11, 12, 15]), 0)
    with pytest.raises(ValueError, match="at least one"):
        sequence_timing(np.array([], np.int64), 0)


def _texture(colour: tuple[int, int, int], seen_from: float) -> np.ndarray:
    """An 8x8 RGBA texture of `colour`, transparent (as unseen texels are) left of u=seen_from;
    the hidden texels hold white, which must not show."""
    rgba = np.full((8, 8, 4), 255, np.uint8)
    rgba[:, :, :3] = colour
    hidden = np.arange(8) < seen_from * 8
    rgba[:, hidden] = (255, 255, 255, 0)
    return rgba


def test_render_shows_the_file_of_each_scene_frame(tmp_path: Path) -> None:
    results = tmp_path / "results"
    for view, colours, seen_from in (("projected", PROJECTED, 0.25), ("footage", FOOTAGE, 0.0)):
        folder = results / "textures" / view
        folder.mkdir(parents=True)
        for frame, colour in colours.items():
            write_png(folder / f"{frame:06d}.png", _texture(colour, seen_from))
    (tmp_path / "renders").mkdir()
    env = {**os.environ, "BLENDER_USER_RESOURCES": str(tmp_path / "blender_user"),
           "HOME": str(tmp_path / "home")}
    python = os.environ.get(BLENDER_PYTHON_VARIABLE) or sys.executable
    run = subprocess.run([python, "-c", SCRIPT, str(LAUNCHER), str(results), str(tmp_path / "renders"),
                          str(SIZE), str(SOURCE_ZERO)],
                         env=env, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    report = json.loads(next(line for line in run.stdout.splitlines()
                             if line.startswith("REPORT "))[len("REPORT "):])

    # Attaching again replaced the earlier attachments' nodes and images, names and all.
    assert report["nodes"] == ["FaceAdapt Texture", "FaceAdapt Texture Mix"]
    assert report["images"] == ["FaceAdapt Skin projected"]
    assert report["views"] == ["footage", "projected", "albedo"]

    def close(measured: list[float], wanted: tuple[int, int, int], what: str) -> None:
        assert np.abs(np.array(measured) - wanted).max() < 8, f"{what}: {measured} != {wanted}"

    # Scene frame 11 + n shows file n; before and after the range the end files hold.
    for scene_frame, source in ((16, 5), (18, 7), (15, 5), (20, 7)):
        pixels = report[f"projected{scene_frame}"]
        close(pixels["centre"], PROJECTED[source], f"scene frame {scene_frame}")
        close(pixels["left"], ALBEDO, f"scene frame {scene_frame}, unseen texels")
    close(report["footage17"]["centre"], FOOTAGE[6], "footage view")
    close(report["footage17"]["left"], FOOTAGE[6], "footage view, opaque")
    close(report["albedo17"]["centre"], ALBEDO, "albedo view")
    assert report["albedo_nodes"] == [] and not report["albedo_linked"]
    assert report["albedo_images"] == []

    gap, missing_view = report["errors"]
    assert "6 is followed by 8" in gap
    assert "'decoded'" in missing_view and "footage, projected, albedo" in missing_view
    assert report["view_after_errors"] == "albedo"  # the failed calls changed nothing
