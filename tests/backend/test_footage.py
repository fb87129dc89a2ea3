"""A movie that cannot be decoded to its end: the refusal names the frame and offers the
decodable range as --frames, so the work can be redone on what decodes."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from backend.footage import Footage
from backend.formats.errors import BadInput
from conftest import REPO_ROOT


def _decodable_frames(path: Path) -> int:
    """Frames OpenCV decodes from the start before it stops (the oracle, read independently)."""
    import cv2

    capture = cv2.VideoCapture(str(path))
    count = 0
    while capture.grab():
        count += 1
    capture.release()
    return count


@pytest.fixture
def truncated_clip(data_dir, tmp_path) -> Path:
    """A real clip with its index (moov) moved to the front, then cut short: the header
    announces every frame, decoding stops part way (a clip with the index at the end is
    refused at opening once cut)."""
    import imageio_ffmpeg

    whole = tmp_path / "faststart.mp4"
    subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-v", "error", "-y", "-i",
                    str(data_dir / "videos" / "lp_driving_d18.mp4"), "-c", "copy", "-movflags",
                    "+faststart", str(whole)], check=True, timeout=120)
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(whole.read_bytes()[:100_000])
    return cut


@pytest.mark.data
def test_undecodable_tail_offers_the_decodable_range_as_frames(truncated_clip):
    footage = Footage(truncated_clip)
    decodable = _decodable_frames(truncated_clip)
    assert 10 < decodable < footage.info.frame_count
    first = decodable - 5
    with pytest.raises(BadInput) as refused:
        for _ in footage.frames(first, footage.info.frame_count - 1):
            pass
    message = str(refused.value)
    assert f"footage {truncated_clip}: frame {decodable} cannot be decoded" in message
    assert f"{footage.info.frame_count} frames announced" in message
    assert f"pass --frames {first}-{decodable - 1} to use them" in message
    assert len(list(footage.frames(first, decodable - 1))) == 5  # the range offered decodes


@pytest.mark.data
def test_undecodable_start_says_no_frame_decodes(truncated_clip):
    footage = Footage(truncated_clip)
    decodable = _decodable_frames(truncated_clip)
    with pytest.raises(BadInput, match=rf"frame {decodable} cannot be decoded .* no frame from "
                                       rf"{decodable} on decodes"):
        list(footage.frames(decodable, footage.info.frame_count - 1))


@pytest.mark.data
def test_track_on_a_clip_damaged_part_way_offers_frames(truncated_clip, default_head, tmp_path):
    decodable = _decodable_frames(truncated_clip)
    first = decodable - 3
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    done = subprocess.run([sys.executable, "-m", "backend", "track", str(truncated_clip), "--out",
                           str(tmp_path / "results"), "--frames", f"{first}-{decodable + 20}",
                           "--texture-size", "32", "--device", "cpu"], cwd=REPO_ROOT,
                          capture_output=True, text=True, timeout=600, env=env)
    assert done.returncode == 2, done.stderr
    assert f"pass --frames {first}-{decodable - 1} to use them" in done.stderr
    assert not (tmp_path / "results").exists()
