"""Shared fixtures: the shared data (skip without it, fail under CI=true), temp caches, and
the extension folder importable as the package `faceadapt` (the add-on's modules import the
file-format core relatively, as they do inside Blender)."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
LAUNCHER = REPO_ROOT / "blender_addon" / "run_program.py"


def _load_extension_package() -> None:
    spec = importlib.util.spec_from_file_location("run_program", LAUNCHER)
    assert spec is not None and spec.loader is not None
    launcher = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(launcher)
    launcher.load_extension_package()


_load_extension_package()


@pytest.fixture(scope="session", autouse=True)
def isolated_caches(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Keep every cache the tests write (default head, Blender, torch hub) in temp dirs."""
    root = tmp_path_factory.mktemp("caches")
    os.environ["FACEADAPT_CACHE"] = str(root / "faceadapt")
    os.environ["BLENDER_USER_RESOURCES"] = str(root / "blender")
    os.environ["TORCH_HOME"] = str(root / "torch")
    return root


@pytest.fixture(scope="session")
def data_dir() -> Path:
    from backend.data_location import data_dir as locate

    path = locate()
    if not (path / "videos").is_dir():
        if os.environ.get("CI") == "true":
            pytest.fail(f"shared data missing at {path} (FACEADAPT_DATA) under CI=true")
        pytest.skip(f"shared data not found at {path}; set FACEADAPT_DATA")
    return path


@pytest.fixture(scope="session")
def default_head():
    from backend.heads.default_head import default_head as build

    return build()


@pytest.fixture(scope="session")
def default_head_file(default_head, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from backend.formats.head_file import save_head

    path = tmp_path_factory.mktemp("head") / "head.npz"
    save_head(default_head, path)
    return path


def blender_program(program: str, *args: str) -> list[str]:
    """The command running the Blender-side program blender_addon/<program>.py (with this
    interpreter, which has bpy)."""
    return [sys.executable, str(LAUNCHER), program, *args]


def run_backend(*args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    """`python -m backend ARGS` from the repository root, capturing output."""
    return subprocess.run([sys.executable, "-m", "backend", *args], cwd=REPO_ROOT,
                          capture_output=True, text=True, timeout=timeout)
