"""What a batch re-run compares: the digest of a shot's settings and of what they name."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from backend.batch.shot_file import Shot
from backend.batch.shot_record import settings_digest
from backend.dam.model_folder import DEFAULT_MODEL
from backend.track import TrackSettings


def _shot(footage: Path, model: str) -> Shot:
    return Shot("a", 1, TrackSettings(footage=footage, out=footage.parent / "out" / "a", model=model), 10)


def test_a_model_retrained_in_place_is_another_model(tmp_path):
    footage = tmp_path / "a.mp4"
    footage.write_bytes(b"not decoded here")
    model = tmp_path / "actor"
    shutil.copytree(DEFAULT_MODEL, model)
    before = settings_digest(_shot(footage, str(model)))
    assert settings_digest(_shot(footage, str(model))) == before
    assert settings_digest(_shot(footage, "default")) != before  # another folder
    encoder = model / "encoder.safetensors"
    stat = encoder.stat()
    os.utime(encoder, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))  # written again
    assert settings_digest(_shot(footage, str(model))) != before
    # A spec naming no model folder still digests (the shot fails on it when it runs).
    assert settings_digest(_shot(footage, str(tmp_path / "nowhere"))) != before
