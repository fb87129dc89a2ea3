"""The extension with modules named `backend`, `operators` and `blender_addon` first on sys.path
(another add-on's or the user's, say) in a fresh bpy process: it must load, register and run
its own code, imported relatively under its package, and never import those names.

    <blender python> tests/extension/shadowing_scenarios.py ZIP WORKDIR REPORT.json

Run from a directory outside the repository with BLENDER_USER_RESOURCES and HOME in a temp
folder and $FACEADAPT_BACKEND_PYTHON naming the backend's interpreter. The fake packages are
written under WORKDIR/shadows; each leaves a file IMPORTED beside itself and raises ImportError
when imported. tests/extension/test_extension_lifecycle.py asserts on the report.
"""

from __future__ import annotations

import importlib
import json
import os
import sys
from pathlib import Path

import bpy
from extension_build import MODULE
from scenario_observations import run_operator, run_scenario

SHADOWING_NAMES = ("backend", "operators", "blender_addon")
FAKE_PACKAGE = '''import pathlib
pathlib.Path(__file__).with_name("IMPORTED").write_text(__name__)
raise ImportError(f"the fake top-level {__name__!r} of the shadowing scenario was imported")
'''


def write_shadows(folder: Path) -> None:
    for name in SHADOWING_NAMES:
        (folder / name).mkdir(parents=True)
        (folder / name / "__init__.py").write_text(FAKE_PACKAGE)


def imported_shadows(folder: Path) -> list[str]:
    return sorted(marker.parent.name for marker in folder.glob("*/IMPORTED"))


def main() -> None:
    zip_path, workdir, report_path = sys.argv[1:4]
    shadows = Path(workdir) / "shadows"
    write_shadows(shadows)
    sys.path.insert(0, str(shadows))
    # The backend process the add-on starts inherits them too (after the extension's folder).
    os.environ["PYTHONPATH"] = str(shadows)
    report: dict = {}

    bpy.ops.wm.read_factory_settings(use_empty=True)
    path_before = list(sys.path)
    bpy.ops.extensions.package_install_files(filepath=zip_path, repo="user_default",
                                             enable_on_install=True)
    extension_root = Path(sys.modules[MODULE].__file__).resolve().parent
    report["enabled"] = MODULE in bpy.context.preferences.addons
    report["classes"] = sorted(n for n in dir(bpy.types) if n.startswith("FACEADAPT_"))
    report["sys_path_added"] = [p for p in sys.path if p not in path_before]
    report["extension_root_on_sys_path"] = any(Path(p).resolve() == extension_root for p in sys.path if p)

    # Add FaceAdapt Head runs the backend and builds the head from the head file with the
    # extension's file-format core; Track Footage's refusal is the extension's own code too.
    report["add_head"] = run_operator("add_head")
    head = bpy.context.active_object
    report["head_shape_keys"] = len(head.data.shape_keys.key_blocks) if head and head.data.shape_keys else 0
    report["track_without_strip"] = run_operator("track_footage")
    report["core_module_files"] = sorted(
        str(Path(m.__file__).resolve().relative_to(extension_root))
        for n, m in list(sys.modules.items()) if n.startswith(MODULE + ".backend.formats."))

    report["shadowing_modules_imported"] = sorted(
        n for n in sys.modules if n.split(".")[0] in SHADOWING_NAMES)
    report["shadows_imported"] = imported_shadows(shadows)
    # Control: a plain absolute import of each name does reach the fake, so the fakes were
    # really first on sys.path and the extension would have hit them had it imported them.
    controls = {}
    for name in SHADOWING_NAMES:
        try:
            importlib.import_module(name)
            controls[name] = "imported without error"
        except ImportError as exc:
            controls[name] = str(exc)
    report["control_imports"] = controls
    report["shadows_imported_by_control"] = imported_shadows(shadows)
    Path(report_path).write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    run_scenario(main)
