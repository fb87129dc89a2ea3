"""The per-frame camera file (DESIGN.md conventions): round trip and every refusal."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from backend.formats.camera_file import CameraFile, load_camera_file
from backend.formats.errors import BadInput

K = np.array([[500.0, 0, 319.5], [0, 500.0, 239.5], [0, 0, 1]])


def pose(tz: float) -> np.ndarray:
    angle = 0.3
    result = np.eye(4)
    result[:3, :3] = [[np.cos(angle), 0, np.sin(angle)], [0, 1, 0], [-np.sin(angle), 0, np.cos(angle)]]
    result[:3, 3] = [0.01, -0.02, tz]
    return result


def valid_document() -> dict:
    return {"width": 640, "height": 480, "intrinsics": K.tolist(),
            "frames": {"3": pose(0.5).tolist(), "10": pose(0.6).tolist()}}


def write(path: Path, document: object) -> Path:
    path.write_text(json.dumps(document))
    return path


def test_round_trip(tmp_path):
    made = CameraFile(640, 480, K, {3: pose(0.5), 10: pose(0.6)})
    path = made.save(tmp_path / "camera.json")
    loaded = load_camera_file(path)
    assert (loaded.width, loaded.height) == (640, 480)
    np.testing.assert_array_equal(loaded.intrinsics, K)
    assert sorted(loaded.poses) == [3, 10]
    np.testing.assert_array_equal(loaded.poses[10], pose(0.6))
    # The documented layout: frame indices as JSON object keys, 4x4 nested lists.
    document = json.loads(path.read_text())
    assert set(document) == {"width", "height", "intrinsics", "frames"}
    assert document["frames"]["3"] == pose(0.5).tolist()
    assert [p.name for p in tmp_path.iterdir()] == ["camera.json"]


def test_a_hand_written_file_loads(tmp_path):
    loaded = load_camera_file(write(tmp_path / "camera.json", valid_document()))
    np.testing.assert_array_equal(loaded.poses[3], pose(0.5))


def change(**fields: object) -> dict:
    document = valid_document()
    for key, value in fields.items():
        if value is None:
            document.pop(key)
        else:
            document[key] = value
    return document


@pytest.mark.parametrize(("document", "field"), [
    ([1, 2], "(top level)"),
    (change(width=None), "width"),
    (change(width=0), "width"),
    (change(width=640.5), "width"),
    (change(width="640"), "width"),
    (change(width=True), "width"),
    (change(height=-480), "height"),
    (change(intrinsics=None), "intrinsics"),
    (change(intrinsics=np.eye(4).tolist()), "intrinsics"),
    (change(intrinsics=[[500, 0, "a"], [0, 500, 1], [0, 0, 1]]), "intrinsics"),
    (change(intrinsics=[[500, 0], [0, 500, 1], [0, 0, 1]]), "intrinsics"),
    (change(intrinsics=[[500, 0, float("nan")], [0, 500, 1], [0, 0, 1]]), "intrinsics"),
    (change(frames=None), "frames"),
    (change(frames={}), "frames"),
    (change(frames=[pose(0.5).tolist()]), "frames"),
    (change(frames={"first": pose(0.5).tolist()}), "frames.first"),
    (change(frames={"-1": pose(0.5).tolist()}), "frames.-1"),
    (change(frames={"2": np.eye(3).tolist()}), "frames.2"),
    (change(frames={"2": [[1, 0, 0, 0]] * 3 + [[0, 0, 1]]}), "frames.2"),
    (change(frames={"2": np.where(np.eye(4) > 0, np.inf, 0).tolist()}), "frames.2"),
])
def test_each_refusal_names_the_field(tmp_path, document, field):
    path = write(tmp_path / "camera.json", document)
    with pytest.raises(BadInput, match=rf"camera file .*camera\.json: field '{re.escape(field)}'"):
        load_camera_file(path)


def test_unreadable_file_is_refused(tmp_path):
    with pytest.raises(BadInput, match=r"camera file .*missing\.json cannot be read as JSON"):
        load_camera_file(tmp_path / "missing.json")
    (tmp_path / "camera.json").write_text('{"width": 640,')
    with pytest.raises(BadInput, match=r"camera file .*camera\.json cannot be read as JSON"):
        load_camera_file(tmp_path / "camera.json")
