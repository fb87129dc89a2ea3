"""A movie that cannot be decoded to its end: the refusal names the frame and offers the
decodable range as --frames, so the work can be redone on what decodes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
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


@pytest.fixture
def rotated_clip(data_dir, tmp_path) -> tuple[Path, Path]:
    """(the first 3 frames of a real 512x480 clip, the same stream with a display matrix that
    shows it turned 90 degrees counter-clockwise), made by imageio-ffmpeg's ffmpeg: phone
    footage shot in portrait is stored so."""
    import imageio_ffmpeg

    ffmpeg = imageio_ffmpeg.get_ffmpeg_exe()
    stored, rotated = tmp_path / "stored.mp4", tmp_path / "rotated.mp4"
    subprocess.run([ffmpeg, "-v", "error", "-y", "-i", str(data_dir / "videos" / "lp_driving_d9.mp4"),
                    "-frames:v", "3", "-c", "copy", str(stored)], check=True, timeout=120)
    subprocess.run([ffmpeg, "-v", "error", "-y", "-display_rotation:v:0", "90", "-i", str(stored),
                    "-c", "copy", str(rotated)], check=True, timeout=120)
    return stored, rotated


@pytest.mark.data
def test_rotated_phone_footage_is_decoded_as_displayed(rotated_clip):
    stored, rotated = rotated_clip
    plain, turned = Footage(stored), Footage(rotated)
    assert (plain.info.width, plain.info.height, plain.info.rotation) == (512, 480, 0)
    # 90 degrees counter-clockwise on display is 270 clockwise, as the metadata says.
    assert (turned.info.width, turned.info.height, turned.info.rotation) == (480, 512, 270)
    for (_, as_stored), (_, as_displayed) in zip(plain.frames(0, 2), turned.frames(0, 2), strict=True):
        np.testing.assert_array_equal(as_displayed, np.rot90(as_stored, 1))
    (_, seeked), = turned.frames(2, 2)  # a seek keeps the rotation
    assert seeked.shape == (512, 480, 3)


@pytest.mark.data
def test_track_on_rotated_footage_records_the_displayed_size_and_rotation(rotated_clip,
                                                                         default_head, tmp_path):
    _, rotated = rotated_clip
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    done = subprocess.run([sys.executable, "-m", "backend", "track", str(rotated), "--out",
                           str(tmp_path / "results"), "--frames", "0-1", "--texture-size", "32",
                           "--device", "cpu"], cwd=REPO_ROOT, capture_output=True, text=True,
                          timeout=600, env=env)
    assert done.returncode == 0, done.stderr
    source = json.loads((tmp_path / "results" / "result.json").read_text())["source"]
    assert (source["width"], source["height"], source["rotation"]) == (480, 512, 270)
    with np.load(tmp_path / "results" / "tracking.npz") as tracking:
        intrinsics, landmarks = tracking["intrinsics"], tracking["landmarks_fit"]
    # The camera is the displayed frame's (principal point at its centre) and the face is found
    # inside the displayed frame.
    np.testing.assert_allclose(intrinsics[:2, 2], [(480 - 1) / 2, (512 - 1) / 2])
    assert (landmarks[..., 0] < 480).all() and (landmarks[..., 1] < 512).all()
