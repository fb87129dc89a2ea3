"""What the scenario scripts observe inside the bpy process: an operator's outcome with the
scene change it caused, and the deprecation warnings Blender raised for the extension's code."""

from __future__ import annotations

import os
import traceback
import warnings
from collections.abc import Callable
from pathlib import Path

import bpy


def snapshot() -> dict:
    """What an operator must leave untouched when it fails."""
    scene = bpy.context.scene
    meshes = {m.name: (len(m.vertices), len(m.shape_keys.key_blocks) if m.shape_keys else 0)
              for m in bpy.data.meshes}
    return {
        "objects": sorted(o.name for o in bpy.data.objects),
        "meshes": meshes,
        "actions": sorted(a.name for a in bpy.data.actions),
        "cameras": sorted(c.name for c in bpy.data.cameras),
        "images": sorted(i.name for i in bpy.data.images),
        "scene_camera": scene.camera.name if scene.camera else None,
        "frame_range": [scene.frame_start, scene.frame_end],
        "resolution": [scene.render.resolution_x, scene.render.resolution_y],
    }


def run_operator(name: str, **kwargs: object) -> dict:
    """Call bpy.ops.faceadapt.NAME (blocking path); its result, error and scene change."""
    before = snapshot()
    try:
        result = sorted(getattr(bpy.ops.faceadapt, name)(**kwargs))
        error = None
    except RuntimeError as exc:  # operators reporting ERROR raise in background mode
        result, error = ["CANCELLED"], str(exc)
    return {"result": result, "error": error, "unchanged": snapshot() == before}


def extension_deprecations(caught: list[warnings.WarningMessage], extension_root: Path) -> list[str]:
    """`file:line: message` of each DeprecationWarning raised by a line of the installed
    extension (Blender warns when a script uses an API it will remove: 5.3 renamed the strip
    timing properties, for one)."""
    root = str(extension_root.resolve())
    return sorted({f"{Path(w.filename).resolve().relative_to(root)}:{w.lineno}: {w.message}"
                   for w in caught if issubclass(w.category, DeprecationWarning)
                   and str(Path(w.filename).resolve()).startswith(root + "/")})


def run_scenario(main: Callable[[], None]) -> None:
    """Run a scenario script's `main` in this bpy process, then leave at once with its status
    (a traceback and 1 on failure): os._exit skips the interpreter's shutdown, where bpy's
    exit handlers can outlast the test's timeout."""
    try:
        main()
    except Exception:
        traceback.print_exc()
        os._exit(1)
    os._exit(0)
