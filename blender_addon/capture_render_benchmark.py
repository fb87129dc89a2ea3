"""Time lab-capture views of a head in Blender's render engines (run by `python -m backend bench
capture`, beside the backend's own renderer).

    capture_render_benchmark --head HEAD.npz --cameras CAMERAS.npy --target=X,Y,Z --fov-deg F
        --light=X,Y,Z --size S --samples N --engines eevee,cycles --json OUT.json

The head is built as the ground-truth clips build it (head_mesh + skin_material), lit by one
sun along the lab's light direction; a camera is placed at each of the capture's camera centres
(CAMERAS.npy: (C, 3) head space, metres) looking at the face with the capture's field of view.
Per engine one view is rendered to warm up (shaders, BVH), then every camera is rendered and
timed; the figure is seconds per view. PNGs are written to a temporary folder and removed.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from ..backend.formats.head_file import load_head
from .head_mesh import head_mesh, skin_material

ENGINES = {"eevee": "BLENDER_EEVEE", "cycles": "CYCLES"}
EEVEE_SAMPLES = 8


def _vector(text: str) -> list[float]:
    """'x,y,z', passed as --name=x,y,z (a value starting with '-' would read as an option)."""
    values = [float(v) for v in text.split(",")]
    if len(values) != 3:
        raise argparse.ArgumentTypeError(f"{text!r}: expected X,Y,Z")
    return values


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--head", type=Path, required=True)
    parser.add_argument("--cameras", type=Path, required=True)
    parser.add_argument("--target", type=_vector, required=True, help="face centre, head space: X,Y,Z")
    parser.add_argument("--fov-deg", type=float, required=True)
    parser.add_argument("--light", type=_vector, required=True, help="direction light travels: X,Y,Z")
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--samples", type=int, default=12)
    parser.add_argument("--engines", default="eevee,cycles")
    parser.add_argument("--json", type=Path, required=True)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    import bpy
    from mathutils import Vector

    args = parse_args(argv)
    head = load_head(args.head)
    cameras = np.load(args.cameras)
    bpy.ops.wm.read_factory_settings(use_empty=True)
    scene = bpy.context.scene
    mesh = head_mesh("Head", head.vertices, head.faces, head.uv, head.uv_faces)
    mesh.materials.append(skin_material("Head", head.albedo))
    scene.collection.objects.link(bpy.data.objects.new("Head", mesh))
    camera = bpy.data.objects.new("Camera", bpy.data.cameras.new("Camera"))
    camera.data.angle = math.radians(args.fov_deg)
    scene.collection.objects.link(camera)
    scene.camera = camera
    sun = bpy.data.objects.new("Lab Light", bpy.data.lights.new("Lab Light", "SUN"))
    sun.rotation_euler = Vector(args.light).to_track_quat("-Z", "Y").to_euler()
    scene.collection.objects.link(sun)
    scene.render.resolution_x = scene.render.resolution_y = args.size
    scene.render.image_settings.file_format = "PNG"
    target = Vector(args.target)

    def aim(centre: np.ndarray) -> None:
        camera.location = Vector(centre.tolist())
        camera.rotation_euler = (target - camera.location).to_track_quat("-Z", "Y").to_euler()

    report = {"size": args.size, "views": len(cameras), "engines": {}}
    with tempfile.TemporaryDirectory() as tmp:
        for name in [e.strip() for e in args.engines.split(",") if e.strip()]:
            scene.render.engine = ENGINES[name]
            if name == "cycles":
                scene.cycles.device = "CPU"
                scene.cycles.samples = args.samples
            else:
                scene.eevee.taa_render_samples = EEVEE_SAMPLES
            aim(cameras[0])
            scene.render.filepath = str(Path(tmp) / f"{name}-warm.png")
            bpy.ops.render.render(write_still=True)
            start = time.perf_counter()
            for i, centre in enumerate(cameras):
                aim(centre)
                scene.render.filepath = str(Path(tmp) / f"{name}-{i}.png")
                bpy.ops.render.render(write_still=True)
            seconds = (time.perf_counter() - start) / len(cameras)
            report["engines"][name] = {"seconds_per_view": round(seconds, 4),
                                       "samples": args.samples if name == "cycles" else EEVEE_SAMPLES}
            print(f"{name}: {seconds:.3f} s per view", file=sys.stderr)
    args.json.write_text(json.dumps(report, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
