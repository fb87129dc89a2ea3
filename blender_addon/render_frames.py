"""Render frames of a .blend with Cycles: the tracked, textured head over the footage as an
import leaves the scene (its camera, lights, compositor).

    <blender python> blender_addon/run_program.py render_frames SCENE.blend --frames 1,24,48
        --out DIR [--samples 16]

Writes DIR/frame_NNNN.png for each scene frame; the demo renders three of out/demo.blend.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

DEFAULT_SAMPLES = 16  # enough for a clean face at clip resolution with denoising off


def render_frames(scene: object, frames: list[int], out_dir: Path,
                  samples: int = DEFAULT_SAMPLES) -> list[Path]:
    """Render `frames` of `scene` with Cycles on the CPU into out_dir; returns the files."""
    scene.render.engine = "CYCLES"
    scene.cycles.device = "CPU"
    scene.cycles.samples = samples
    scene.cycles.use_denoising = False
    scene.render.image_settings.file_format = "PNG"
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    import bpy

    for frame in frames:
        scene.frame_set(frame)
        path = out_dir / f"frame_{frame:04d}.png"
        scene.render.filepath = str(path)
        bpy.ops.render.render(write_still=True, scene=scene.name)
        written.append(path)
        print(f"rendered {path}", file=sys.stderr, flush=True)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("blend", type=Path)
    parser.add_argument("--frames", required=True,
                        help="scene frames, comma-separated (e.g. 1,24,48)")
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--samples", type=int, default=DEFAULT_SAMPLES)
    args = parser.parse_args(argv)
    try:
        frames = [int(f) for f in args.frames.split(",") if f.strip()]
    except ValueError:
        print(f"error: --frames {args.frames!r}: comma-separated scene frames", file=sys.stderr)
        return 2
    if not args.blend.is_file():
        print(f"error: {args.blend} does not exist", file=sys.stderr)
        return 2
    import bpy

    bpy.ops.wm.open_mainfile(filepath=str(args.blend.resolve()))
    render_frames(bpy.context.scene, frames, args.out.resolve(), args.samples)
    return 0


if __name__ == "__main__":
    sys.exit(main())
