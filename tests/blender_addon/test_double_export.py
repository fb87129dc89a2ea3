"""Make Model From Double's export, run in a bpy process: a small quad-mesh double, turned and
scaled in the scene, with shape keys (one relative to another), an image on its Base Color and
a `face` vertex group, written as a head file; and what it refuses. (The operator itself runs
in tests/extension: a double made into a model.)"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from conftest import BLENDER_PYTHON_VARIABLE, LAUNCHER

pytestmark = pytest.mark.blender

SCRIPT = r'''
import importlib.util, json, math, sys
from pathlib import Path

launcher_path, work = sys.argv[1:3]
spec = importlib.util.spec_from_file_location("run_program", launcher_path)
launcher = importlib.util.module_from_spec(spec)
spec.loader.exec_module(launcher)
launcher.load_extension_package()

import bpy
import numpy as np

from faceadapt.backend.formats.head_file import load_head
from faceadapt.blender_addon.backend_job import UserError
from faceadapt.blender_addon.double_export import double_head, export_double

work = Path(work)
report = {}
bpy.ops.wm.read_factory_settings(use_empty=True)
# A 3 x 2 grid of quads (12 vertices), turned 90 degrees about Z and scaled by 2 in the scene.
verts = [(x * 0.1, 0.0, z * 0.1) for z in range(3) for x in range(4)]
quads = [(z * 4 + x, z * 4 + x + 1, z * 4 + x + 5, z * 4 + x + 4) for z in range(2) for x in range(3)]
mesh = bpy.data.meshes.new("double")
mesh.from_pydata(verts, [], quads)
uv = mesh.uv_layers.new(name="UVMap")
for loop in mesh.loops:
    co = verts[loop.vertex_index]
    uv.data[loop.index].uv = (co[0] / 0.3, co[2] / 0.2)
obj = bpy.data.objects.new("Double", mesh)
bpy.context.scene.collection.objects.link(obj)
obj.rotation_euler = (0.0, 0.0, math.pi / 2)
obj.scale = (2.0, 2.0, 2.0)
bpy.context.view_layer.update()
report["refused_keys"] = None
try:
    double_head(obj)
except UserError as exc:
    report["refused_keys"] = str(exc)
basis = obj.shape_key_add(name="Basis")
blink = obj.shape_key_add(name="EyeBlink_L")
blink.data[5].co = (0.1, -0.01, 0.1)  # vertex 5 moves 1 cm toward -Y (object space)
corrective = obj.shape_key_add(name="myCorrective")
corrective.relative_key = blink
for i, point in enumerate(corrective.data):
    point.co = blink.data[i].co
corrective.data[6].co = (0.2, 0.0, 0.12)  # +2 cm up, relative to the blink key
report["refused_texture"] = None
try:
    double_head(obj)
except UserError as exc:
    report["refused_texture"] = str(exc)
image = bpy.data.images.new("skin", 4, 2, alpha=True)
pixels = np.zeros((2, 4, 4), np.float32)
pixels[..., 3] = 1.0
pixels[0, :, 0] = 1.0  # bottom row (Blender's first) red
pixels[1, :, 2] = 1.0  # top row blue
image.pixels.foreach_set(pixels.ravel())
material = bpy.data.materials.new("Skin")
if material.node_tree is None:  # before Blender 5 a new material had no node tree
    material.use_nodes = True
bsdf = next(n for n in material.node_tree.nodes if n.type == "BSDF_PRINCIPLED")
texture = material.node_tree.nodes.new("ShaderNodeTexImage")
texture.image = image
material.node_tree.links.new(texture.outputs["Color"], bsdf.inputs["Base Color"])
mesh.materials.append(material)
group = obj.vertex_groups.new(name="face")
group.add([0, 1, 2], 1.0, "REPLACE")
path = work / "doubles" / "double.npz"
export_double(obj, path)
head = load_head(path)
report["head"] = {"vertices": head.vertices.tolist(), "faces": head.faces.tolist(),
                  "uv_corners": head.uv[head.uv_faces].tolist(), "names": head.blendshape_names,
                  "blendshapes": head.blendshapes.tolist(), "albedo": head.albedo.tolist(),
                  "face_region": head.face_region.tolist(),
                  "landmark_mask": head.landmark_mask.tolist()}
report["mesh_unchanged"] = [len(mesh.vertices), len(mesh.polygons), len(mesh.shape_keys.key_blocks)]
print("REPORT " + json.dumps(report))
'''


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> dict:
    work = tmp_path_factory.mktemp("double")
    env = {**os.environ, "BLENDER_USER_RESOURCES": str(work / "blender_user"), "HOME": str(work / "home")}
    python = os.environ.get(BLENDER_PYTHON_VARIABLE) or sys.executable
    run = subprocess.run([python, "-c", SCRIPT, str(LAUNCHER), str(work)], env=env,
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    line = next(line for line in run.stdout.splitlines() if line.startswith("REPORT "))
    return json.loads(line[len("REPORT "):])


def test_a_double_without_shape_keys_or_texture_is_refused_with_what_to_add(report: dict):
    assert "no expression shape keys" in report["refused_keys"]
    assert "no textured material" in report["refused_texture"]
    assert "Image Texture" in report["refused_texture"]


def test_the_double_is_written_in_its_scene_orientation_with_its_vertex_order(report: dict):
    head = report["head"]
    vertices = np.array(head["vertices"])
    # Object (x, y, z) -> world: turned 90 degrees about Z, scaled 2: (-2y, 2x, 2z).
    grid = np.array([(x * 0.1, 0.0, z * 0.1) for z in range(3) for x in range(4)])
    np.testing.assert_allclose(vertices, np.stack([-2 * grid[:, 1], 2 * grid[:, 0], 2 * grid[:, 2]], 1),
                               atol=1e-6)
    faces = np.array(head["faces"])
    assert faces.shape == (12, 3)  # six quads, two triangles each, on the same 12 vertices
    assert sorted(set(faces.ravel())) == list(range(12))
    # Each triangle corner carries the UV of its vertex.
    corners = np.array(head["uv_corners"])
    np.testing.assert_allclose(corners, np.stack([grid[faces][..., 0] / 0.3, grid[faces][..., 2] / 0.2], -1),
                               atol=1e-6)
    assert report["mesh_unchanged"] == [12, 6, 3]


def test_shape_keys_become_blendshapes_named_in_arkit_spelling_where_they_match(report: dict):
    head = report["head"]
    assert head["names"] == ["eyeBlinkLeft", "myCorrective"]
    deltas = np.array(head["blendshapes"])
    expected = np.zeros((2, 12, 3))
    expected[0, 5] = [0.02, 0.0, 0.0]  # -1 cm in object Y is +2 cm in world X
    expected[1, 6] = [0.0, 0.0, 0.04]  # the corrective's offset from its relative key only
    np.testing.assert_allclose(deltas, expected, atol=1e-6)


def test_the_albedo_is_the_base_color_image_top_row_first_and_the_face_group_marks_the_face(report: dict):
    albedo = np.array(report["head"]["albedo"])
    assert albedo.shape == (2, 4, 3)
    assert (albedo[0] == [0, 0, 255]).all() and (albedo[1] == [255, 0, 0]).all()
    assert report["head"]["face_region"] == [True] * 3 + [False] * 9
    assert report["head"]["landmark_mask"] == [False] * 68  # placed by the backend
