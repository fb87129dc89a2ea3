"""Render a head's silhouette with Cycles from cameras given in OpenCV convention.

    python -m blender_addon.render_silhouette --head HEAD.npz --cameras CAMERAS.json --out DIR

CAMERAS.json is DESIGN.md's per-frame camera file: {"width", "height", "intrinsics": 3x3,
"frames": {index: 4x4 world -> camera (OpenCV axes)}}; the head's vertices are placed in
world space as they are. Writes DIR/NNNNNN.png, the alpha coverage (0/255 at pixel centres:
a near-zero pixel filter), to check the backend's renderer against Blender.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import bpy
import numpy as np
from mathutils import Matrix

from backend.protocol import frames_label
from blender_addon.camera_conversion import blender_camera_from_intrinsics, blender_matrix_from_opencv_pose


def build(head_path: Path) -> None:
    bpy.ops.wm.read_factory_settings(use_empty=True)
    with np.load(head_path) as data:
        vertices, faces = data["vertices"].astype(np.float32), data["faces"].astype(np.int32)
    mesh = bpy.data.meshes.new("head")
    mesh.from_pydata(vertices.tolist(), [], faces.tolist())
    obj = bpy.data.objects.new("head", mesh)
    bpy.context.scene.collection.objects.link(obj)


def render(cameras: dict, out: Path, samples: int) -> None:
    scene = bpy.context.scene
    scene.render.engine = "CYCLES"
    scene.cycles.device = "CPU"
    scene.cycles.samples = samples
    scene.cycles.filter_width = 0.01  # samples at the pixel centre: coverage, not antialiasing
    scene.cycles.use_denoising = False
    scene.render.film_transparent = True
    scene.render.resolution_x, scene.render.resolution_y = cameras["width"], cameras["height"]
    scene.render.resolution_percentage = 100
    scene.render.image_settings.file_format = "PNG"
    scene.render.image_settings.color_mode = "RGBA"
    settings = blender_camera_from_intrinsics(np.array(cameras["intrinsics"]), cameras["width"],
                                              cameras["height"])
    data = bpy.data.cameras.new("camera")
    data.lens, data.sensor_width, data.sensor_fit = (settings.lens_mm, settings.sensor_width_mm,
                                                     settings.sensor_fit)
    data.shift_x, data.shift_y = settings.shift_x, settings.shift_y
    data.clip_start, data.clip_end = 0.01, 100.0
    camera = bpy.data.objects.new("camera", data)
    scene.collection.objects.link(camera)
    scene.camera = camera
    out.mkdir(parents=True, exist_ok=True)
    for index, pose in cameras["frames"].items():
        camera.matrix_world = Matrix(blender_matrix_from_opencv_pose(np.array(pose)).tolist())
        scene.render.filepath = str(out / f"{frames_label(int(index))}.png")
        bpy.ops.render.render(write_still=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--head", required=True, type=Path)
    parser.add_argument("--cameras", required=True, type=Path)
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--samples", type=int, default=4)
    args = parser.parse_args(argv)
    build(args.head)
    render(json.loads(args.cameras.read_text()), args.out, args.samples)
    return 0


if __name__ == "__main__":
    sys.exit(main())
