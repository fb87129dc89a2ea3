"""Time Import Results in Blender in one geometry mode (run by `python -m backend bench import`).

    python -m blender_addon.import_benchmark --zip EXTENSION.zip --head HEAD.npz --results DIR
        --mode MODE --json OUT.json

Installs the extension in a temporary Blender user folder, builds the head of HEAD.npz as Add
FaceAdapt Head does, then times Import Results of DIR in MODE, a save of the .blend, and playback:
the scene stepped through frames as the viewport plays them, each frame's depsgraph update timed
by frame_change_pre/post handlers.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

from .demo_scene import PACKAGE

PLAYBACK_FRAMES = 100


def measure(zip_path: Path, head_path: Path, results: Path, mode: str, work: Path,
            backend_python: str) -> dict:
    import bpy

    bpy.ops.wm.read_factory_settings(use_empty=True)
    bpy.ops.extensions.package_install_files(filepath=str(zip_path), repo="user_default",
                                             enable_on_install=True)
    bpy.context.preferences.addons[PACKAGE].preferences.backend_python = backend_python
    head_builder = importlib.import_module(f"{PACKAGE}.blender_addon.head_builder")
    head = head_builder.build_head(bpy.context, head_path, str(head_path))
    bpy.context.view_layer.objects.active = head
    side_files = {p.name: p.stat().st_size for p in results.iterdir() if p.is_file()}
    start = time.perf_counter()
    outcome = bpy.ops.faceadapt.import_results(directory=str(results), geometry=mode,
                                               setup_render=False)
    import_s = time.perf_counter() - start
    start = time.perf_counter()
    bpy.ops.wm.save_as_mainfile(filepath=str(work / "bench.blend"))
    save_s = time.perf_counter() - start
    written = {name: p.stat().st_size for p in results.iterdir() if p.is_file()
               and (name := p.name) not in side_files}
    return {"result": sorted(outcome), "mode": mode, "import_s": round(import_s, 2),
            "save_s": round(save_s, 2),
            "blend_mib": round((work / "bench.blend").stat().st_size / 2**20, 1),
            "side_files_mib": round(sum(written.values()) / 2**20, 1),
            "shape_keys": len(head.data.shape_keys.key_blocks),
            "reconstruction_error_mm": [round(e * 1000, 4) for e in
                                        head.get("faceadapt_reconstruction_error_m", [0.0, 0.0])],
            "playback_fps": playback_fps(bpy.context.scene),
            "peak_memory_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)}


def playback_fps(scene: object) -> float:
    """Frames per second of stepping the scene through up to PLAYBACK_FRAMES frames of its range,
    timed from frame_change_pre to frame_change_post (the evaluation a viewport waits for)."""
    import bpy

    spent: list[float] = []
    started: list[float] = []

    def pre(*_: object) -> None:
        started.append(time.perf_counter())

    def post(*_: object) -> None:
        spent.append(time.perf_counter() - started[-1])

    bpy.app.handlers.frame_change_pre.append(pre)
    bpy.app.handlers.frame_change_post.append(post)
    try:
        last = min(scene.frame_end, scene.frame_start + PLAYBACK_FRAMES - 1)
        for frame in range(scene.frame_start, last + 1):
            scene.frame_set(frame)
    finally:
        bpy.app.handlers.frame_change_pre.remove(pre)
        bpy.app.handlers.frame_change_post.remove(post)
    return round(len(spent) / sum(spent), 1) if spent and sum(spent) > 0 else 0.0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--zip", required=True, type=Path)
    parser.add_argument("--head", required=True, type=Path)
    parser.add_argument("--results", required=True, type=Path)
    parser.add_argument("--mode", required=True)
    parser.add_argument("--json", required=True, type=Path)
    parser.add_argument("--backend-python", default=sys.executable)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as work:
        os.environ["BLENDER_USER_RESOURCES"] = str(Path(work) / "blender")
        report = measure(args.zip.resolve(), args.head.resolve(), args.results.resolve(),
                         args.mode, Path(work), args.backend_python)
    args.json.write_text(json.dumps(report))
    return 0 if report["result"] == ["FINISHED"] else 1


if __name__ == "__main__":
    sys.exit(main())
