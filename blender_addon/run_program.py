"""Run one of the Blender-side programs as its own process, under the extension's package.

    <blender python> blender_addon/run_program.py PROGRAM [ARGS...]

PROGRAM is a module of `blender_addon` (render_clip, render_silhouette, demo_scene,
import_benchmark). The programs import the file-format core relatively, as the add-on does
inside Blender, so this script (stdlib only, run by path) loads the extension folder as the
package `faceadapt` and runs `faceadapt.blender_addon.PROGRAM` as `__main__`. Any `backend`
or `blender_addon` elsewhere on sys.path is never imported.
"""

from __future__ import annotations

import importlib.util
import runpy
import sys
from pathlib import Path

PACKAGE = "faceadapt"
EXTENSION_ROOT = Path(__file__).resolve().parent.parent


def load_extension_package() -> None:
    """Import the extension folder as the package `faceadapt` (once per process)."""
    if PACKAGE in sys.modules:
        return
    spec = importlib.util.spec_from_file_location(
        PACKAGE, EXTENSION_ROOT / "__init__.py", submodule_search_locations=[str(EXTENSION_ROOT)])
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[PACKAGE] = module
    spec.loader.exec_module(module)


def main() -> None:
    if len(sys.argv) < 2 or sys.argv[1].startswith("-"):
        sys.exit(f"usage: {Path(__file__).name} PROGRAM [ARGS...]")
    program = sys.argv[1]
    # Programs are run by path; their own directory must not shadow anything on sys.path.
    sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
    load_extension_package()
    sys.argv = [f"{PACKAGE}.blender_addon.{program}", *sys.argv[2:]]
    runpy.run_module(f"{PACKAGE}.blender_addon.{program}", run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
