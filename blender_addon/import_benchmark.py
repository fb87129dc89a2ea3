"""Time Import Results in Blender (run by `python -m backend bench import`).

    python -m blender_addon.import_benchmark --zip EXTENSION.zip --results DIR --json OUT.json

Installs the extension in a temporary Blender user folder, adds the default head through
Add FaceAdapt Head, then times Import Results of DIR and a save of the .blend.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

from .demo_scene import PACKAGE


def measure(zip_path: Path, results: Path, work: Path, backend_python: str) -> dict:
    import bpy

    bpy.ops.wm.read_factory_settings(use_empty=True)
    bpy.ops.extensions.package_install_files(filepath=str(zip_path), repo="user_default",
                                             enable_on_install=True)
    bpy.context.preferences.addons[PACKAGE].preferences.backend_python = backend_python
    start = time.perf_counter()
    bpy.ops.faceadapt.add_head()
    add_head = time.perf_counter() - start
    start = time.perf_counter()
    outcome = bpy.ops.faceadapt.import_results(directory=str(results))
    import_s = time.perf_counter() - start
    head = bpy.context.active_object
    start = time.perf_counter()
    bpy.ops.wm.save_as_mainfile(filepath=str(work / "bench.blend"))
    save_s = time.perf_counter() - start
    return {"result": sorted(outcome), "add_head_s": round(add_head, 2),
            "import_s": round(import_s, 2), "save_s": round(save_s, 2),
            "blend_mib": round((work / "bench.blend").stat().st_size / 2**20, 1),
            "shape_keys": len(head.data.shape_keys.key_blocks),
            "peak_memory_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--zip", required=True, type=Path)
    parser.add_argument("--results", required=True, type=Path)
    parser.add_argument("--json", required=True, type=Path)
    parser.add_argument("--backend-python", default=sys.executable)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as work:
        os.environ["BLENDER_USER_RESOURCES"] = str(Path(work) / "blender")
        report = measure(args.zip.resolve(), args.results.resolve(), Path(work), args.backend_python)
    args.json.write_text(json.dumps(report))
    return 0 if report["result"] == ["FINISHED"] else 1


if __name__ == "__main__":
    sys.exit(main())
