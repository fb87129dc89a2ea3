"""The lab capture's output folder: what `capture --overwrite` may replace (issue 11)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from backend.events import EventSink
from backend.formats.errors import BadInput
from backend.lab.capture import CAPTURE_DIRECTORY, CaptureConfig, make_capture

TINY = CaptureConfig(expressions=2, cameras=2, image_size=32, texture_size=16, seed=1)


def test_capture_overwrite_never_deletes_a_folder_of_other_files(default_head, tmp_path: Path):
    out = tmp_path / "capture"
    out.mkdir()
    (out / "capture.json").write_text(json.dumps({"format": 1}))
    (out / "reference_photos.zip").write_bytes(b"a day in the studio")
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    with pytest.raises(BadInput, match=r"reference_photos\.zip") as refused:
        make_capture(default_head, TINY, out, True, EventSink(False))
    assert str(out) in refused.value.message
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["capture"]


def test_capture_overwrite_replaces_a_capture(default_head, tmp_path: Path):
    out = make_capture(default_head, TINY, tmp_path / "capture", False, EventSink(False))
    assert CAPTURE_DIRECTORY.foreign_to(out) is None
    make_capture(default_head, TINY, out, True, EventSink(False))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["capture"]
