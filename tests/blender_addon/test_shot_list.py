"""Track Strips' shot file: one shot per strip, names safe as folders and distinct, and a file the
backend's batch reads back into the strips' footage and frames."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from faceadapt.blender_addon.footage_source import FootageSource
from faceadapt.blender_addon.shot_list import shot_file_text, strip_shots


def source(name: str, path: str = "/footage/a.mp4", first: int = 0, last: int = 9) -> FootageSource:
    return FootageSource(Path(path), first, last, 1, 25.0, name)


def test_names_are_safe_folder_names_and_distinct_ignoring_case():
    shots = strip_shots([source("take A"), source("take_A"), source("TAKE a"), source("../../etc"),
                         source("é"), source("x" * 200), source("batch.json")])
    assert [s.name for s in shots] == ["take_A", "take_A-2", "TAKE_a-3", "etc", "strip", "x" * 90,
                                       "batch.json-2"]


def test_the_file_reads_back_as_the_strips(data_dir, tmp_path):
    pytest.importorskip("torch", reason="read back by the backend's batch, in the backend's environment")
    from backend.batch.shot_file import load_shot_file

    clip = data_dir / "videos" / "lp_driving_d3.mp4"
    odd = tmp_path / 'quote " and \\ backslash 🎬.mp4'
    odd.symlink_to(clip)
    shots = strip_shots([source("take 1", str(clip), 3, 7), source("take 2", str(odd), 0, 4)])
    text = shot_file_text(shots, "landmark-fit", "cpu")
    document = tomllib.loads(text)
    assert document["defaults"] == {"tracker": "landmark-fit", "device": "cpu"}
    assert document["shot"][1] == {"name": "take_2", "footage": str(odd), "frames": "0-4"}
    path = tmp_path / "shots.toml"
    path.write_text(text, encoding="utf-8")
    loaded = load_shot_file(path, tmp_path / "out")
    assert [(s.name, s.settings.footage, s.frame_count) for s in loaded] == [
        ("take_1", clip, 5), ("take_2", odd, 5)]
    assert tomllib.loads(shot_file_text(shots, None))["defaults"] == {"device": "auto"}
