"""`evaluate` on broken results refuses them as bad input (exit 2) naming the file and field,
never an internal error (exit 4)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from backend.formats import protocol
from backend.formats.head_file import HeadAsset, save_head
from backend.formats.results_dir import TrackingArrays, write_arrays, write_summary
from conftest import REPO_ROOT, rewrite_npz, square_head_fields

FRAMES = 3


def square_head() -> HeadAsset:
    """Two triangles, four vertices, one blendshape."""
    return HeadAsset(**square_head_fields())


def write_square_results(directory: Path, head: HeadAsset) -> Path:
    rng = np.random.default_rng(0)
    pose = np.tile(np.eye(4, dtype=np.float32), (FRAMES, 1, 1))
    pose[:, 2, 3] = 0.6
    weights = rng.uniform(0, 1, (FRAMES, 1)).astype(np.float32)
    directory.mkdir()
    write_arrays(directory, TrackingArrays(
        frames=np.arange(FRAMES), vertices=head.posed_vertices(weights), head_pose=pose,
        intrinsics=np.array([[60.0, 0, 31.5], [0, 60.0, 23.5], [0, 0, 1]]),
        confidence=np.ones(FRAMES), landmarks_2d=rng.uniform(0, 48, (FRAMES, 68, 2)),
        landmarks_conf=np.ones((FRAMES, 68)), landmarks_fit=rng.uniform(0, 48, (FRAMES, 68, 2)),
        optional={"weights": weights, "weight_names": np.array(head.blendshape_names)}), head)
    write_summary(directory, {"tracker": "landmark-fit", "model": "test-square", "source": {
        "path": str(directory / "clip.mp4"), "fps": 25.0, "width": 64, "height": 48}}, head)
    return directory


def _truncate(out: Path) -> None:
    data = (out / "tracking.npz").read_bytes()
    (out / "tracking.npz").write_bytes(data[: len(data) // 2])


def _null_source(out: Path) -> None:
    document = json.loads((out / "result.json").read_text())
    document["source"] = None
    (out / "result.json").write_text(json.dumps(document))


def _singular_pose(out: Path) -> None:
    pose = np.tile(np.eye(4, dtype=np.float32), (FRAMES, 1, 1))
    pose[1, :3, :3] = 0.0
    rewrite_npz(out / "tracking.npz", head_pose=pose)


def _nan_vertices(out: Path) -> None:
    with np.load(out / "tracking.npz") as data:
        vertices = data["vertices"].copy()
    vertices[2, 1, 0] = np.nan
    rewrite_npz(out / "tracking.npz", vertices=vertices)


@pytest.mark.parametrize(("breaking", "message"), [
    (_truncate, r"tracking\.npz cannot be read as \.npz"),
    (lambda out: (out / "result.json").write_text("{not json"), r"result\.json cannot be read as JSON"),
    (_null_source, r"result\.json: field 'source' must be an object"),
    (_singular_pose, r"tracking\.npz: field 'head_pose' row 1 is not a rigid transform"),
    (_nan_vertices, r"tracking\.npz: field 'vertices' contains NaN or inf"),
], ids=["truncated tracking.npz", "invalid result.json", "null source", "singular head_pose",
        "NaN vertices"])
def test_evaluate_on_broken_results_exits_2_naming_the_file(tmp_path, breaking, message):
    head = square_head()
    save_head(head, tmp_path / "head.npz")
    out = write_square_results(tmp_path / "results", head)
    breaking(out)
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    done = subprocess.run([sys.executable, "-m", "backend", "evaluate", str(out), "--head",
                           str(tmp_path / "head.npz")], cwd=REPO_ROOT, capture_output=True,
                          text=True, timeout=300, env=env)
    assert done.returncode == protocol.EXIT_CODES[protocol.ERROR_BAD_INPUT] == 2, done.stderr
    assert str(out) in done.stderr
    assert re.search(message, done.stderr), done.stderr
