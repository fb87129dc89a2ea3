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
    assert "adapted (default)" in done.stderr and "landmark-fit" in done.stderr
    report = json.loads((tmp_path / "demo_report.json").read_text())
    # A render of the trackers' own head: errors must be small, for the default tracker and for
    # the landmark fit printed beside it.
    assert report["tracker"] == "adapted" and report["baseline"]["tracker"] == "landmark-fit"
    for errors in (report["errors"], report["baseline"]["errors"]):
        assert errors["frames"] == 6
        assert errors["vertex_mm_mean"] < 2.0
        assert errors["landmark_px_mean"] < 3.0
    assert (tmp_path / "demo.blend").is_file() and report["blend"].endswith("demo.blend")
    preview = cv2.VideoCapture(str(tmp_path / "demo_preview.mp4"))
    assert int(preview.get(cv2.CAP_PROP_FRAME_COUNT)) == 6
    assert int(preview.get(cv2.CAP_PROP_FRAME_WIDTH)) == 2 * int(preview.get(cv2.CAP_PROP_FRAME_HEIGHT))
