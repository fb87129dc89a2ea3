"""Build the demo .blend through the extension's own operators (part of `make demo`).

    python -m blender_addon.demo_scene --zip dist/faceadapt-X.zip --clip CLIP.mp4 --out demo.blend

Installs the built extension into a temporary Blender user folder, points its backend at this
interpreter, then does what an animator would: Add FaceAdapt Head, put the clip in the Video
Sequencer as a movie strip, Track Footage (results beside the .blend in //faceadapt/), save;
then render the first, middle and last frames with Cycles as F12 would (--renders DIR).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

from .render_frames import render_frames

STRIP_START = 1
PACKAGE = "bl_ext.user_default.faceadapt"  # the installed extension (this checkout is `faceadapt`)


def build_scene(zip_path: Path, clip: Path, out: Path, backend_python: str,
                renders: Path | None = None) -> None:
    import bpy

    bpy.ops.wm.read_factory_settings(use_empty=True)
    bpy.ops.extensions.package_install_files(filepath=str(zip_path), repo="user_default",
                                             enable_on_install=True)
    if PACKAGE not in bpy.context.preferences.addons:
        raise RuntimeError(f"the extension {zip_path} did not enable")
    bpy.context.preferences.addons[PACKAGE].preferences.backend_python = backend_python
    bpy.context.preferences.filepaths.save_version = 0  # no demo.blend1 backups
    scene = bpy.context.scene
    # Saved first, so Track Footage writes its results beside the .blend (//faceadapt/).
    out.parent.mkdir(parents=True, exist_ok=True)
    bpy.ops.wm.save_as_mainfile(filepath=str(out))
    _run(bpy.ops.faceadapt.add_head)
    editor = scene.sequence_editor_create()
    strip = editor.strips.new_movie("demo performance", str(clip), 1, STRIP_START)
    editor.active_strip = strip
    scene.faceadapt.match_fps = True
    _run(bpy.ops.faceadapt.track_footage)
    bpy.ops.file.make_paths_relative()
    bpy.ops.wm.save_as_mainfile(filepath=str(out))
    if renders is not None:
        first, last = scene.frame_start, scene.frame_end
        render_frames(scene, [first, (first + last) // 2, last], renders)


def _run(operator: Callable[[], set[str]]) -> None:
    result = operator()
    if "FINISHED" not in result:
        raise RuntimeError(f"{operator} returned {result}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--zip", required=True, type=Path, help="the built extension zip")
    parser.add_argument("--clip", required=True, type=Path, help="movie file of the performance")
    parser.add_argument("--out", required=True, type=Path, help=".blend to write")
    parser.add_argument("--renders", type=Path, default=None,
                        help="folder for Cycles renders of three frames (default: none)")
    parser.add_argument("--backend-python", default=sys.executable,
                        help="the backend's interpreter (default: this one)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as user_resources:
        os.environ["BLENDER_USER_RESOURCES"] = user_resources
        try:
            build_scene(args.zip.resolve(), args.clip.resolve(), args.out.resolve(), args.backend_python,
                        args.renders.resolve() if args.renders else None)
        except (RuntimeError, OSError) as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
