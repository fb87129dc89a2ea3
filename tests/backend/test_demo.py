"""The main job end to end on a short clip: Blender render, track, score, preview, and the
.blend built through the extension's operators."""

import json

import cv2
import pytest

from conftest import run_backend


@pytest.mark.blender
def test_demo_renders_tracks_and_scores(tmp_path):
    done = run_backend("demo", "--out", str(tmp_path), "--frames", "6", "--device", "cpu")
    assert done.returncode == 0, done.stderr[-3000:]
    assert "mean vertex error" in done.stderr and "mean landmark error" in done.stderr
    report = json.loads((tmp_path / "demo_report.json").read_text())
    # A render of the tracker's own head: errors must be small.
    assert report["errors"]["frames"] == 6
    assert report["errors"]["vertex_mm_mean"] < 2.0
    assert report["errors"]["landmark_px_mean"] < 2.5
    assert (tmp_path / "demo.blend").is_file() and report["blend"].endswith("demo.blend")
    preview = cv2.VideoCapture(str(tmp_path / "demo_preview.mp4"))
    assert int(preview.get(cv2.CAP_PROP_FRAME_COUNT)) == 6
    assert int(preview.get(cv2.CAP_PROP_FRAME_WIDTH)) == 2 * int(preview.get(cv2.CAP_PROP_FRAME_HEIGHT))
