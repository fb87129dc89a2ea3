"""The extension's lifecycle in ONE bpy process (no Blender restart): install and enable,
disable, re-enable after its code changed on disk, an enable that fails halfway through
registration and a fixed enable after it, upgrade by installing a zip with a bumped version over
it, and real work (Add FaceAdapt Head through the backend) with the upgraded code.

    <blender python> tests/extension/lifecycle_scenarios.py ZIP UPGRADE_ZIP REPORT.json

Run from a directory outside the repository with BLENDER_USER_RESOURCES and HOME in a temp
folder and $FACEADAPT_BACKEND_PYTHON naming the backend's interpreter. Records what it observed
at each stage in the report; tests/extension/test_extension_lifecycle.py asserts on it.
"""

from __future__ import annotations

import json
import sys
import warnings
from pathlib import Path

import bpy
from extension_build import (
    BROKEN_FILE,
    BROKEN_FROM,
    BROKEN_TO,
    CHANGED_FILE,
    EDIT_MARK,
    FIX_MARK,
    MODULE,
    NO_FOOTAGE_MESSAGE,
)
from scenario_observations import extension_deprecations, run_operator, run_scenario


def installed_root() -> Path:
    return Path(bpy.utils.user_resource("EXTENSIONS")) / "user_default" / "faceadapt"


def installed_version() -> str | None:
    import tomllib

    manifest = installed_root() / "blender_manifest.toml"
    return tomllib.loads(manifest.read_text())["version"] if manifest.is_file() else None


def state() -> dict:
    """What is installed, enabled, registered and imported right now; when enabled, the error
    Track Footage reports with no footage selected (which code runs)."""
    enabled = MODULE in bpy.context.preferences.addons
    observed = {
        "enabled": enabled,
        "version": installed_version(),
        "classes": sorted(n for n in dir(bpy.types) if n.startswith("FACEADAPT_")),
        "submodules": sorted(n for n in sys.modules if n.startswith(MODULE + ".")),
        "operator_files": sorted({str(Path(m.__file__).relative_to(installed_root()))
                                  for n, m in list(sys.modules.items())
                                  if n.startswith(MODULE + ".operators.") and getattr(m, "__file__", None)}),
    }
    if enabled:
        observed["no_footage"] = run_operator("track_footage")
    else:
        try:
            bpy.ops.faceadapt.track_footage()
            observed["operator_callable"] = True
        except (AttributeError, RuntimeError):
            observed["operator_callable"] = False
    return observed


def edit_installed(relative: str, old: str, new: str) -> None:
    """Replace `old` (present exactly once) by `new` in an installed file of the extension."""
    path = installed_root() / relative
    text = path.read_text()
    if text.count(old) != 1:
        raise RuntimeError(f"{path}: expected {old!r} once, found {text.count(old)}")
    path.write_text(text.replace(old, new))


def enable() -> str | None:
    """Enable the extension; the error Blender reported, if enabling failed."""
    try:
        bpy.ops.preferences.addon_enable(module=MODULE)
    except RuntimeError as exc:
        return str(exc)
    return None


def main() -> None:
    zip_path, upgrade_zip, report_path = sys.argv[1:4]
    report: dict = {}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        bpy.ops.wm.read_factory_settings(use_empty=True)
        bpy.ops.extensions.package_install_files(filepath=zip_path, repo="user_default",
                                                 enable_on_install=True)
        report["installed"] = state()

        bpy.ops.preferences.addon_disable(module=MODULE)
        report["disabled"] = state()

        # A developer (or a sync) changes the installed code while it is disabled.
        edit_installed(CHANGED_FILE, NO_FOOTAGE_MESSAGE, NO_FOOTAGE_MESSAGE + EDIT_MARK)
        report["reenable_error"] = enable()
        report["reenabled"] = state()

        # Enabling fails after the operators registered (the panel cannot); the code is fixed,
        # and a module the failed attempt imported changed too: the next enable runs it.
        bpy.ops.preferences.addon_disable(module=MODULE)
        edit_installed(BROKEN_FILE, BROKEN_FROM, BROKEN_TO)
        report["failed_enable_error"] = enable()
        report["failed_enable"] = state()
        edit_installed(BROKEN_FILE, BROKEN_TO, BROKEN_FROM)
        edit_installed(CHANGED_FILE, EDIT_MARK, FIX_MARK)
        report["fixed_enable_error"] = enable()
        report["fixed_enable"] = state()

        bpy.ops.extensions.package_install_files(filepath=upgrade_zip, repo="user_default",
                                                 enable_on_install=True)
        report["upgraded"] = state()
        report["upgraded_add_head"] = run_operator("add_head")
        head = bpy.context.active_object
        report["upgraded_head_shape_keys"] = (len(head.data.shape_keys.key_blocks)
                                              if head is not None and head.data.shape_keys else 0)
    report["deprecations"] = extension_deprecations(caught, installed_root())
    Path(report_path).write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    run_scenario(main)
