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
    # F12 of the demo's .blend: the head rendered over the footage, which shows at the corners.
    renders = sorted((tmp_path / "demo_renders").glob("frame_*.png"))
    assert [p.name for p in renders] == ["frame_0001.png", "frame_0003.png", "frame_0006.png"]
    clip = cv2.VideoCapture(str(tmp_path / "demo_clip.mp4"))
    ok, footage = clip.read()
    assert ok
    render = cv2.imread(str(renders[0]))
    assert render.shape == footage.shape
    corners = (slice(0, 16), slice(0, 16))
    assert abs(float(render[corners].mean()) - float(footage[corners].mean())) < 12
    assert render.std() > 10  # a picture, not a flat colour
