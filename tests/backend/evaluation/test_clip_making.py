"""make-benchmark's clip folders: a clip is remade in place, any other folder of its name is
refused, never deleted (issue 11)."""

from __future__ import annotations

from pathlib import Path

import pytest

from backend.evaluation.clip_making import make_clips
from backend.evaluation.clip_specs import QUICK_CLIPS
from backend.events import EventSink
from backend.formats.errors import BadInput


def test_make_benchmark_never_deletes_a_folder_of_other_files_named_like_a_clip(tmp_path: Path):
    spec = QUICK_CLIPS[0]
    folder = tmp_path / spec.name
    folder.mkdir()
    (folder / "footage.mp4").write_bytes(b"the user's own take")
    (folder / "notes.txt").write_text("keep")
    before = {p.name: p.read_bytes() for p in folder.iterdir()}
    with pytest.raises(BadInput, match=r"no readable clip\.json") as refused:
        make_clips((spec,), tmp_path, 0, EventSink(False))
    assert str(folder) in refused.value.message
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == [spec.name]
