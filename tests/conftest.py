"""Shared fixtures: the shared data (skip without it, fail under CI=true), temp caches, and
the extension folder importable as the package `faceadapt` (the add-on's modules import the
file-format core relatively, as they do inside Blender).

Two kinds of environment run these tests. The project's .venv (bpy 5.0.1 and the backend's
packages) runs all of them. A Blender-side environment (bpy, numpy and pytest only, e.g.
.venv-blender53 with bpy 5.3.0) runs with `--blender-side`: only the tests in BLENDER_SIDE_TESTS
are collected, and the extension they install talks to the backend's interpreter
($FACEADAPT_BACKEND_PYTHON) over the process boundary, as users have it.
"""

from __future__ import annotations

import importlib.util
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
LAUNCHER = REPO_ROOT / "blender_addon" / "run_program.py"
TESTS_ROOT = Path(__file__).resolve().parent
# What `--blender-side` collects (relative to tests/): tests needing only bpy, numpy, pytest and
# the extension's own code (the backend runs as a separate process)...
BLENDER_SIDE_TESTS = ("extension", "blender_addon")
# ...except these, which import the backend's packages (PIL, backend.evaluation) in the test
# process; `make test` runs them on Blender 5.3 through $FACEADAPT_BLENDER_PYTHON instead.
NOT_BLENDER_SIDE = ("blender_addon/test_render_clip.py",)
BACKEND_PYTHON_VARIABLE = "FACEADAPT_BACKEND_PYTHON"
BLENDER_PYTHON_VARIABLE = "FACEADAPT_BLENDER_PYTHON"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--blender-side", action="store_true",
                     help="this is a Blender-side environment (bpy, numpy, pytest): collect only "
                          f"{', '.join(BLENDER_SIDE_TESTS)} under tests/ (not "
                          f"{', '.join(NOT_BLENDER_SIDE)}); the extension's backend is "
                          f"${BACKEND_PYTHON_VARIABLE}")


def pytest_configure(config: pytest.Config) -> None:
    if config.getoption("--blender-side"):
        backend = os.environ.get(BACKEND_PYTHON_VARIABLE)
        if not backend or shutil.which(backend) is None:
            raise pytest.UsageError(
                f"--blender-side needs ${BACKEND_PYTHON_VARIABLE}, the backend's interpreter (an "
                f"environment with torch, e.g. .venv/bin/python from `make venv`); got {backend!r}")
    elif importlib.util.find_spec("torch") is None:
        raise pytest.UsageError(
            f"torch is not installed in {sys.executable}: this is not the project's environment. "
            "Run `make test`, or in a Blender-side environment (bpy, numpy, pytest) pass "
            f"--blender-side with ${BACKEND_PYTHON_VARIABLE} set")


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    """Under --blender-side, everything outside BLENDER_SIDE_TESTS is left uncollected (its
    modules import torch or other backend packages this environment does not have)."""
    if not config.getoption("--blender-side"):
        return None
    try:
        relative = collection_path.resolve().relative_to(TESTS_ROOT)
    except ValueError:
        return None
    if relative == Path("."):
        return None
    if relative in map(Path, NOT_BLENDER_SIDE):
        return True
    for wanted in map(Path, BLENDER_SIDE_TESTS):
        if relative == wanted or wanted in relative.parents or relative in wanted.parents:
            return None
    return True


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


@pytest.fixture(scope="session")
def untrained_encoder_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the shipped model folder with a freshly initialised (seeded, untrained) image
    encoder: for tests of shapes, files and plumbing, not of accuracy."""
    import shutil

    import torch

    from backend.encoder.encoder_file import save_encoder
    from backend.encoder.network import EncoderArchitecture, ImageEncoder

    folder = tmp_path_factory.mktemp("model") / "untrained"
    shutil.copytree(Path(__file__).parents[1] / "backend/models/default", folder,
                    ignore=shutil.ignore_patterns("encoder.*"))
    torch.manual_seed(0)
    save_encoder(folder, ImageEncoder(EncoderArchitecture()), {"training": None, "metrics": {}})
    return folder


@pytest.fixture(scope="session")
def backend_python() -> Path:
    """The interpreter the extension under test runs the backend with: $FACEADAPT_BACKEND_PYTHON
    (a Blender-side run), else this one (the project's .venv has the backend's packages)."""
    return Path(os.environ.get(BACKEND_PYTHON_VARIABLE) or sys.executable)


def blender_program(program: str, *args: str) -> list[str]:
    """The command running the Blender-side program blender_addon/<program>.py: with
    $FACEADAPT_BLENDER_PYTHON when set (as the backend's commands do: `make test` runs these
    tests once more with Blender 5.3's environment), else this interpreter, which has bpy."""
    return [os.environ.get(BLENDER_PYTHON_VARIABLE) or sys.executable, str(LAUNCHER), program, *args]


def run_backend(*args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    """`python -m backend ARGS` from the repository root, capturing output."""
    return subprocess.run([sys.executable, "-m", "backend", *args], cwd=REPO_ROOT,
                          capture_output=True, text=True, timeout=timeout)


def rewrite_npz(path: Path, **changes: object) -> Path:
    """Rewrite the .npz at `path` with some arrays replaced (a value of None drops the array):
    how tests make the broken files the readers must refuse."""
    import numpy as np

    with np.load(path, allow_pickle=False) as data:
        arrays = {k: data[k] for k in data.files}
    for key, value in changes.items():
        if value is None:
            arrays.pop(key)
        else:
            arrays[key] = value
    np.savez(path, **arrays)
    return path


def square_head_fields() -> dict:
    """The fields of a tiny valid head (two triangles, four vertices, one blendshape) for
    HeadAsset(**...), from whichever package the test imports it (backend or faceadapt)."""
    import numpy as np

    return dict(
        vertices=np.array([[-0.05, 0, 0], [0.05, 0, 0], [0.05, 0, 0.1], [-0.05, 0, 0.1]], np.float32),
        faces=np.array([[0, 1, 2], [0, 2, 3]]), uv=np.array([[0, 0], [1, 0], [1, 1], [0, 1]], np.float32),
        uv_faces=np.array([[0, 1, 2], [0, 2, 3]]), blendshapes=np.full((1, 4, 3), 0.01, np.float32),
        blendshape_names=["jawOpen"], landmark_vertex=np.arange(68) % 4,
        landmark_mask=np.ones(68, bool), face_region=np.ones(4, bool))


def yawed_poses(head, yaw_degrees: list[float], distance: float = 0.6) -> np.ndarray:
    """(F, 4, 4) float32 head -> camera poses looking at the head's face centre from `distance`
    metres, the camera turned about the head's vertical axis by each yaw (degrees)."""
    from backend.head_space import HEAD_TO_FRONT_CAMERA
    from backend.lab.capture import face_centre_and_height

    centre, _ = face_centre_and_height(head)
    poses = np.tile(np.eye(4, dtype=np.float32), (len(yaw_degrees), 1, 1))
    for pose, yaw in zip(poses, np.radians(yaw_degrees), strict=True):
        spin = np.array([[math.cos(yaw), -math.sin(yaw), 0], [math.sin(yaw), math.cos(yaw), 0],
                         [0, 0, 1]])
        pose[:3, :3] = HEAD_TO_FRONT_CAMERA @ spin
        pose[:3, 3] = np.array([0, 0, distance]) - pose[:3, :3] @ centre
    return poses
