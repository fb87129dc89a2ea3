"""The extension's lifecycle without restarting Blender, in the Blender of this environment
(bpy 5.0.1 in .venv, 5.3.0 in .venv-blender53): install and enable, disable, re-enable with
changed code, upgrade to a bumped version over the installed one (lifecycle_scenarios.py); and
loading with modules named `backend` and `operators` first on sys.path (shadowing_scenarios.py).
Each scenario script is one bpy process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from extension_build import (
    EDIT_MARK,
    FIX_MARK,
    NO_FOOTAGE_MESSAGE,
    UPGRADE_MARK,
    build_zip,
    bumped,
    manifest_version,
    upgraded_source,
)

from conftest import REPO_ROOT

pytestmark = pytest.mark.blender

# Classes the scenarios rely on (the registration registers these and more).
USED_CLASSES = {"FACEADAPT_OT_add_head", "FACEADAPT_OT_track_footage", "FACEADAPT_OT_import_results",
                "FACEADAPT_PT_main"}


def run_scenario(script: str, args: list[str], work: Path, backend_python: Path) -> dict:
    """Run tests/extension/SCRIPT in a fresh bpy process (this interpreter) with Blender's user
    folders and HOME under `work`; the report it wrote."""
    env = dict(os.environ, BLENDER_USER_RESOURCES=str(work / "blender"), HOME=str(work / "home"),
               FACEADAPT_BACKEND_PYTHON=str(backend_python))
    env.pop("PYTHONPATH", None)
    (work / "home").mkdir()
    report = work / "report.json"
    done = subprocess.run([sys.executable, str(Path(__file__).with_name(script)), *args, str(report)],
                          cwd=work, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return json.loads(report.read_text())


@pytest.fixture(scope="module")
def zips(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The extension zip, and one built from a copy with a bumped version and changed code."""
    current = build_zip(REPO_ROOT, tmp_path_factory.mktemp("dist"))
    upgraded = upgraded_source(tmp_path_factory.mktemp("upgrade") / "faceadapt")
    return current, build_zip(upgraded, tmp_path_factory.mktemp("dist-upgrade"))


@pytest.fixture(scope="module")
def lifecycle(zips: tuple[Path, Path], backend_python: Path,
              tmp_path_factory: pytest.TempPathFactory) -> dict:
    current, upgraded = zips
    return run_scenario("lifecycle_scenarios.py", [str(current), str(upgraded)],
                        tmp_path_factory.mktemp("lifecycle"), backend_python)


@pytest.fixture(scope="module")
def shadowed(zips: tuple[Path, Path], backend_python: Path,
             tmp_path_factory: pytest.TempPathFactory) -> dict:
    work = tmp_path_factory.mktemp("shadowing")
    return run_scenario("shadowing_scenarios.py", [str(zips[0]), str(work)], work, backend_python)


def test_upgrade_zip_is_a_newer_version(zips: tuple[Path, Path]):
    version = manifest_version(REPO_ROOT)
    assert zips[0].name == f"faceadapt-{version}.zip"
    assert zips[1].name == f"faceadapt-{bumped(version)}.zip"


def test_install_enables_and_registers(lifecycle: dict):
    installed = lifecycle["installed"]
    assert installed["enabled"] and installed["version"] == manifest_version(REPO_ROOT)
    assert USED_CLASSES <= set(installed["classes"])
    assert installed["no_footage"]["result"] == ["CANCELLED"]
    assert NO_FOOTAGE_MESSAGE + " (" in installed["no_footage"]["error"]


def test_disable_unregisters_and_forgets_the_code(lifecycle: dict):
    disabled = lifecycle["disabled"]
    assert not disabled["enabled"]
    assert disabled["classes"] == [] and not disabled["operator_callable"]
    # Nothing of the package but its root stays imported, so enabling imports from disk.
    assert disabled["submodules"] == []


def test_reenable_runs_the_code_now_on_disk(lifecycle: dict):
    reenabled = lifecycle["reenabled"]
    assert lifecycle["reenable_error"] is None
    assert reenabled["enabled"]
    assert reenabled["classes"] == lifecycle["installed"]["classes"]
    assert NO_FOOTAGE_MESSAGE + EDIT_MARK in reenabled["no_footage"]["error"]


def test_failed_enable_leaves_nothing_registered_or_imported(lifecycle: dict):
    failed = lifecycle["failed_enable"]
    assert lifecycle["failed_enable_error"] is not None
    assert not failed["enabled"]
    assert failed["classes"] == [] and not failed["operator_callable"]
    assert failed["submodules"] == []


def test_enable_after_a_failed_one_runs_the_fixed_code(lifecycle: dict):
    fixed = lifecycle["fixed_enable"]
    assert lifecycle["fixed_enable_error"] is None
    assert fixed["enabled"]
    assert fixed["classes"] == lifecycle["installed"]["classes"]
    assert NO_FOOTAGE_MESSAGE + FIX_MARK in fixed["no_footage"]["error"]


def test_upgrade_over_the_installed_version_runs_the_new_code(lifecycle: dict):
    upgraded = lifecycle["upgraded"]
    assert upgraded["enabled"] and upgraded["version"] == bumped(manifest_version(REPO_ROOT))
    assert upgraded["classes"] == lifecycle["installed"]["classes"]
    error = upgraded["no_footage"]["error"]
    assert NO_FOOTAGE_MESSAGE + UPGRADE_MARK in error and FIX_MARK not in error
    assert upgraded["operator_files"] == lifecycle["installed"]["operator_files"]


def test_upgraded_extension_does_real_work(lifecycle: dict):
    assert lifecycle["upgraded_add_head"]["result"] == ["FINISHED"], lifecycle["upgraded_add_head"]
    assert lifecycle["upgraded_head_shape_keys"] == 53  # Basis + 52 ARKit shapes


def test_lifecycle_uses_no_api_this_blender_deprecates(lifecycle: dict):
    assert lifecycle["deprecations"] == []


def test_loads_with_backend_and_operators_shadowed(shadowed: dict):
    assert shadowed["enabled"]
    assert USED_CLASSES <= set(shadowed["classes"])
    assert not shadowed["extension_root_on_sys_path"], shadowed["sys_path_added"]


def test_runs_its_own_code_when_shadowed(shadowed: dict):
    assert shadowed["add_head"]["result"] == ["FINISHED"], shadowed["add_head"]
    assert shadowed["head_shape_keys"] == 53
    assert "backend/formats/head_file.py" in shadowed["core_module_files"]
    refusal = shadowed["track_without_strip"]
    assert refusal["result"] == ["CANCELLED"] and "make a movie strip active" in refusal["error"]


def test_shadowing_modules_were_never_imported(shadowed: dict):
    assert shadowed["shadowing_modules_imported"] == []
    assert shadowed["shadows_imported"] == []
    # ...though they were first on sys.path: a plain import reaches each fake.
    for name, error in shadowed["control_imports"].items():
        assert f"the fake top-level {name!r}" in error
    assert shadowed["shadows_imported_by_control"] == sorted(shadowed["control_imports"])
