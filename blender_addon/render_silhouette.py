"""Render a head's silhouette with Cycles from cameras given in OpenCV convention.

    <blender python> blender_addon/run_program.py render_silhouette --head HEAD.npz \
        --cameras CAMERAS.json --out DIR

CAMERAS.json is DESIGN.md's per-frame camera file (backend/formats/camera_file.py); the
head's rest vertices are placed in world space as they are. Writes DIR/NNNNNN.png, the alpha
coverage (0/255 at pixel centres: a near-zero pixel filter), to check the backend's renderer
against Blender.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import bpy
import numpy as np
from mathutils import Matrix

from ..backend.formats.camera_file import CameraFile, load_camera_file
from ..backend.formats.head_file import load_head
from ..backend.formats.results_dir import frame_label
from .camera_conversion import blender_camera_from_intrinsics, blender_matrix_from_opencv_pose
from .head_mesh import head_mesh


def build(head_path: Path) -> None:
    bpy.ops.wm.read_factory_settings(use_empty=True)
    head = load_head(head_path)
    obj = bpy.data.objects.new("head", head_mesh("head", head.vertices, head.faces))
    bpy.context.scene.collection.objects.link(obj)


def render(cameras: CameraFile, out: Path, samples: int) -> None:
    scene = bpy.context.scene
    scene.render.engine = "CYCLES"
    scene.cycles.device = "CPU"
    scene.cycles.samples = samples
    scene.cycles.filter_width = 0.01  # samples at the pixel centre: coverage, not antialiasing
    scene.cycles.use_denoising = False
    scene.render.film_transparent = True
    scene.render.resolution_x, scene.render.resolution_y = cameras.width, cameras.height
    scene.render.resolution_percentage = 100
    scene.render.image_settings.file_format = "PNG"
    scene.render.image_settings.color_mode = "RGBA"
    settings = blender_camera_from_intrinsics(cameras.intrinsics, cameras.width, cameras.height)
    data = bpy.data.cameras.new("camera")
    data.lens, data.sensor_width, data.sensor_fit = (settings.lens_mm, settings.sensor_width_mm,
                                                     settings.sensor_fit)
    data.shift_x, data.shift_y = settings.shift_x, settings.shift_y
    data.clip_start, data.clip_end = 0.01, 100.0
    camera = bpy.data.objects.new("camera", data)
    scene.collection.objects.link(camera)
    scene.camera = camera
    out.mkdir(parents=True, exist_ok=True)
    for index, pose in cameras.poses.items():
        camera.matrix_world = Matrix(blender_matrix_from_opencv_pose(np.array(pose)).tolist())
        scene.render.filepath = str(out / f"{frame_label(index)}.png")
        bpy.ops.render.render(write_still=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="render_silhouette", description=__doc__.splitlines()[0])
    parser.add_argument("--head", required=True, type=Path)
    parser.add_argument("--cameras", required=True, type=Path)
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--samples", type=int, default=4)
    args = parser.parse_args(argv)
    build(args.head)
    render(load_camera_file(args.cameras), args.out, args.samples)
    return 0


if __name__ == "__main__":
    sys.exit(main())
