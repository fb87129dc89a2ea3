"""Building the extension zip under test with Blender's own builder (build.py), and building an
upgraded copy of it: a bumped manifest version and a code change a test can see running.

Imported by the tests (pytest puts tests/extension on sys.path) and by the scenario scripts run
by path from this folder inside a bpy process (their folder is sys.path[0]); stdlib only.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
MODULE = "bl_ext.user_default.faceadapt"  # the extension's package inside Blender
# What the upgrade changes, and where: the error Track Footage reports when no footage is
# selected (a message built by code that runs on every call, so the test sees which version runs).
CHANGED_FILE = "operators/track_footage.py"
NO_FOOTAGE_MESSAGE = "no footage selected: make a movie strip active in the Video Sequencer"
UPGRADE_MARK = " [upgraded]"
EDIT_MARK = " [edited while disabled]"
FIX_MARK = " [fixed after a failed enable]"
# A registration that fails halfway (the Clip Editor's panel is registered last, after the
# operators and the other panels).
BROKEN_FILE = "blender_addon/panel.py"
BROKEN_FROM, BROKEN_TO = 'bl_space_type = "CLIP_EDITOR"', 'bl_space_type = "NO_SUCH_SPACE"'
# Top-level folders of the checkout that are not the extension (build.py excludes them too).
_NOT_SOURCE = {"tests", "docs", "bench", "out", "dist", "__pycache__"}


def build_zip(source_root: Path, out_dir: Path) -> Path:
    """`python build.py --out OUT_DIR` in `source_root` with this interpreter's bpy builder;
    the zip it wrote."""
    out_dir.mkdir(parents=True, exist_ok=True)
    done = subprocess.run([sys.executable, str(source_root / "build.py"), "--out", str(out_dir)],
                          cwd=source_root, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"build.py in {source_root} failed:\n{done.stdout}{done.stderr}")
    (zip_path,) = out_dir.glob("faceadapt-*.zip")
    return zip_path


def manifest_version(source_root: Path) -> str:
    return tomllib.loads((source_root / "blender_manifest.toml").read_text())["version"]


def bumped(version: str) -> str:
    """The next patch version: 0.1.0 -> 0.1.1."""
    major, minor, patch = (int(part) for part in version.split("."))
    return f"{major}.{minor}.{patch + 1}"


def upgraded_source(dest: Path) -> Path:
    """A copy of the extension source in `dest` with the manifest version bumped and
    NO_FOOTAGE_MESSAGE followed by UPGRADE_MARK; refuses if either edit finds no unique target."""
    shutil.copytree(REPO_ROOT, dest, ignore=_outside_extension)
    manifest = dest / "blender_manifest.toml"
    new_version = bumped(manifest_version(REPO_ROOT))
    text, count = re.subn(r'(?m)^version = "[^"]*"$', f'version = "{new_version}"', manifest.read_text())
    if count != 1:
        raise RuntimeError(f"{manifest}: expected one top-level `version = \"...\"` line, found {count}")
    manifest.write_text(text)
    changed = dest / CHANGED_FILE
    code = changed.read_text()
    if code.count(NO_FOOTAGE_MESSAGE) != 1:
        raise RuntimeError(f"{CHANGED_FILE}: expected the message {NO_FOOTAGE_MESSAGE!r} once, found "
                           f"{code.count(NO_FOOTAGE_MESSAGE)}; update tests/extension/extension_build.py")
    changed.write_text(code.replace(NO_FOOTAGE_MESSAGE, NO_FOOTAGE_MESSAGE + UPGRADE_MARK))
    return dest


def _outside_extension(folder: str, names: list[str]) -> set[str]:
    """copytree filter: hidden entries everywhere (.git, .venv*), and the checkout's top-level
    folders that are not part of the extension."""
    top = Path(folder).resolve() == REPO_ROOT
    return {n for n in names if n.startswith(".") or n == "__pycache__" or (top and n in _NOT_SOURCE)}
