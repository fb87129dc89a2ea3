"""Listing and removing results directories: only FaceAdapt's own are listed or removed."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from faceadapt.blender_addon.results_listing import human_size, list_results, remove_results


def make_results(folder: Path, name: str, modified: float, frame_range: list[int] | None = None,
                 payload: int = 100, textures: bool = False) -> Path:
    """A results directory as `track` leaves it (arrays as placeholder bytes of known size)."""
    directory = folder / name
    directory.mkdir()
    document = {"schema": 1, "source": {"path": f"/footage/{name}.mp4", "fps": 30.0}}
    if frame_range is not None:
        document["source"]["frame_range"] = frame_range
    (directory / "result.json").write_text(json.dumps(document))
    (directory / "tracking.npz").write_bytes(b"t" * payload)
    (directory / "mesh.npz").write_bytes(b"m" * 10)
    if textures:
        (directory / "textures" / "projected").mkdir(parents=True)
        (directory / "textures" / "projected" / "000000.png").write_bytes(b"p" * 7)
    os.utime(directory, (modified, modified))
    return directory


def tree_bytes(directory: Path) -> int:
    return sum(p.stat().st_size for p in directory.rglob("*") if p.is_file())


def test_listing_newest_first_with_sizes_and_details(tmp_path: Path) -> None:
    old = make_results(tmp_path, "shot_a", 1_000_000, [0, 47], payload=1000, textures=True)
    new = make_results(tmp_path, "shot_b", 2_000_000, [10, 19])
    middle = make_results(tmp_path, "shot_c", 1_500_000)
    entries = list_results(tmp_path)
    assert [entry.name for entry in entries] == ["shot_b", "shot_c", "shot_a"]
    by_name = {entry.name: entry for entry in entries}
    size_a = len(json.dumps({"schema": 1, "source": {"path": "/footage/shot_a.mp4", "fps": 30.0,
                                                     "frame_range": [0, 47]}}))
    assert by_name["shot_a"].size_bytes == size_a + 1000 + 10 + 7 == tree_bytes(old)
    assert by_name["shot_b"].size_bytes == tree_bytes(new)
    assert (by_name["shot_a"].frame_count, by_name["shot_b"].frame_count) == (48, 10)
    assert by_name["shot_c"].frame_count is None  # result.json without a frame range
    assert by_name["shot_a"].footage == "shot_a.mp4"
    assert by_name["shot_b"].modified == 2_000_000 and by_name["shot_c"].path == middle


def test_foreign_folders_ignored_and_refused(tmp_path: Path) -> None:
    make_results(tmp_path, "shot", 1_000_000)
    holiday = tmp_path / "holiday"
    holiday.mkdir()
    (holiday / "result.json").write_text(json.dumps({"score": 3}))  # not FaceAdapt's
    (tmp_path / "notes.txt").write_text("hello")
    partial = make_results(tmp_path, ".shot.pid42.partial", 3_000_000)  # a run in progress
    assert [entry.name for entry in list_results(tmp_path)] == ["shot"]
    with pytest.raises(ValueError, match=r"holiday is not removed: its result\.json is not FaceAdapt's"):
        remove_results(holiday)
    with pytest.raises(ValueError, match="not a directory"):
        remove_results(tmp_path / "notes.txt")
    assert (holiday / "result.json").exists() and (tmp_path / "notes.txt").exists()
    assert partial.exists()
    assert list_results(tmp_path / "missing") == []


def test_results_with_a_user_file_refused(tmp_path: Path) -> None:
    directory = make_results(tmp_path, "shot", 1_000_000, textures=True)
    (directory / "my_notes.txt").write_text("keep me")
    assert list_results(tmp_path) == []
    with pytest.raises(ValueError, match=r"shot is not removed: it holds files FaceAdapt did not "
                                         r"write \(my_notes\.txt\)"):
        remove_results(directory)
    (directory / "my_notes.txt").unlink()
    # Deeper: a user's file among the textures.
    (directory / "textures" / "projected" / "reference.jpg").write_bytes(b"x")
    with pytest.raises(ValueError, match=r"textures/projected/reference\.jpg"):
        remove_results(directory)
    (directory / "textures" / "projected" / "reference.jpg").unlink()
    # A folder where the format has a file.
    (directory / "mesh.npz").unlink()
    (directory / "mesh.npz").mkdir()
    (directory / "mesh.npz" / "mine.blend").write_bytes(b"x")
    with pytest.raises(ValueError, match=r"mesh\.npz is not a file"):
        remove_results(directory)
    assert (directory / "mesh.npz" / "mine.blend").exists()


def test_remove_results_deletes_the_whole_directory(tmp_path: Path) -> None:
    directory = make_results(tmp_path, "shot", 1_000_000, textures=True)
    (directory / "cache.pc2").write_bytes(b"c" * 32)
    keep = make_results(tmp_path, "other", 1_000_000)
    remove_results(directory)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["other"]
    assert keep.is_dir()


def test_human_size() -> None:
    assert human_size(0) == "0 B"
    assert human_size(1023) == "1023 B"
    assert human_size(1536) == "1.5 KiB"
    assert human_size(23 * 1024**2 + 300) == "23 MiB"
    assert human_size(int(1.25 * 1024**3)) == "1.2 GiB"
    assert human_size(5 * 1024**5) == "5120 TiB"
