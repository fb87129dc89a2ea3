"""The Live Link Face CSV export: header, columns, timecodes and head angles."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from faceadapt.blender_addon.arkit_names import ARKIT_NAMES
from faceadapt.blender_addon.facs_csv import (
    FACING_CAMERA,
    LIVE_LINK_FACE_BLENDSHAPES,
    FacsCsvReport,
    head_rotation_angles,
    live_link_timecode,
    write_live_link_csv,
)

# As a real Live Link Face capture's header row is quoted (one line, no spaces).
EXPECTED_HEADER = (
    "Timecode,BlendshapeCount,EyeBlinkLeft,EyeLookDownLeft,EyeLookInLeft,EyeLookOutLeft,"
    "EyeLookUpLeft,EyeSquintLeft,EyeWideLeft,EyeBlinkRight,EyeLookDownRight,EyeLookInRight,"
    "EyeLookOutRight,EyeLookUpRight,EyeSquintRight,EyeWideRight,JawForward,JawRight,JawLeft,"
    "JawOpen,MouthClose,MouthFunnel,MouthPucker,MouthRight,MouthLeft,MouthSmileLeft,"
    "MouthSmileRight,MouthFrownLeft,MouthFrownRight,MouthDimpleLeft,MouthDimpleRight,"
    "MouthStretchLeft,MouthStretchRight,MouthRollLower,MouthRollUpper,MouthShrugLower,"
    "MouthShrugUpper,MouthPressLeft,MouthPressRight,MouthLowerDownLeft,MouthLowerDownRight,"
    "MouthUpperUpLeft,MouthUpperUpRight,BrowDownLeft,BrowDownRight,BrowInnerUp,BrowOuterUpLeft,"
    "BrowOuterUpRight,CheekPuff,CheekSquintLeft,CheekSquintRight,NoseSneerLeft,NoseSneerRight,"
    "TongueOut,HeadYaw,HeadPitch,HeadRoll,LeftEyeYaw,LeftEyePitch,LeftEyeRoll,RightEyeYaw,"
    "RightEyePitch,RightEyeRoll"
)


def rotation(axis: list[float], angle: float) -> np.ndarray:
    """Rodrigues: a rotation by `angle` radians about `axis`."""
    axis_ = np.asarray(axis, float) / np.linalg.norm(axis)
    cross = np.array([[0, -axis_[2], axis_[1]], [axis_[2], 0, -axis_[0]], [-axis_[1], axis_[0], 0]])
    return np.eye(3) + np.sin(angle) * cross + (1 - np.cos(angle)) * cross @ cross


def read_rows(path: Path) -> tuple[list[str], list[list[str]]]:
    lines = path.read_text().splitlines()
    return lines[0].split(","), [line.split(",") for line in lines[1:]]


def export(tmp_path: Path, count: int = 3, **overrides: object) -> tuple[Path, FacsCsvReport]:
    """Write `count` frames of zero weights, head facing the camera, with `overrides`."""
    arguments = {"weights": np.zeros((count, 2)), "weight_names": ["jawOpen", "eyeBlinkLeft"],
                 "head_rotation": np.repeat(FACING_CAMERA[None], count, axis=0),
                 "frames": np.arange(count), "fps": 30.0}
    arguments.update(overrides)
    path = tmp_path / "take.csv"
    return path, write_live_link_csv(path, **arguments)


def test_blendshape_columns_are_the_arkit_channels() -> None:
    assert len(LIVE_LINK_FACE_BLENDSHAPES) == 52
    assert sorted(c[0].lower() + c[1:] for c in LIVE_LINK_FACE_BLENDSHAPES) == sorted(ARKIT_NAMES)


def test_header_and_61_values_per_row(tmp_path: Path) -> None:
    path, report = export(tmp_path, count=4)
    header, rows = read_rows(path)
    assert ",".join(header) == EXPECTED_HEADER
    assert len(header) == 63 and len(rows) == 4 and report.rows == 4
    for row in rows:
        assert row[1] == "61" and len(row) == 63
        assert all(value == "0.000000" for value in row[2:])
    assert [p.name for p in tmp_path.iterdir()] == ["take.csv"]


def test_known_weight_lands_in_its_column(tmp_path: Path) -> None:
    weights = np.array([[0.25, 0.0, 0.5], [0.75, 1.0, 0.0]])
    path, report = export(tmp_path, count=2, weights=weights,
                          weight_names=["jawOpen", "mouthLeft", "smileBig"])
    header, rows = read_rows(path)
    assert float(rows[0][header.index("JawOpen")]) == 0.25
    assert float(rows[1][header.index("JawOpen")]) == 0.75
    assert header.index("JawOpen") == 2 + 17
    assert float(rows[1][header.index("MouthLeft")]) == 1.0
    assert float(rows[1][header.index("MouthRight")]) == 0.0
    assert report.written == ["jawOpen", "mouthLeft"]
    assert report.ignored == ["smileBig"]
    assert len(report.missing) == 50 and "eyeBlinkLeft" in report.missing


def test_timecodes() -> None:
    assert live_link_timecode(0, 30.0) == "00:00:00:00.000"
    assert live_link_timecode(25, 30.0) == "00:00:00:25.000"
    assert live_link_timecode(30, 30.0) == "00:00:01:00.000"
    assert live_link_timecode(30 * 3661 + 7, 30.0) == "01:01:01:07.000"
    assert live_link_timecode(59, 29.97) == "00:00:01:29.000"  # 30 labels a second
    assert live_link_timecode(12.5, 24.0) == "00:00:00:12.500"
    assert live_link_timecode(12.9996, 24.0) == "00:00:00:13.000"


def test_timecodes_of_source_frames_in_rows(tmp_path: Path) -> None:
    path, _ = export(tmp_path, count=2, frames=np.array([25, 60]))
    _, rows = read_rows(path)
    assert [row[0] for row in rows] == ["00:00:00:25.000", "00:00:02:00.000"]


def test_head_facing_the_camera_is_zero_and_yaw_sign(tmp_path: Path) -> None:
    # +0.3 rad about the head's vertical axis (head space +Z, camera -Y): the face turns toward
    # the image's right.
    about_head_up = FACING_CAMERA @ rotation([0, 0, 1], 0.3)
    about_camera_up = rotation([0, -1, 0], 0.3) @ FACING_CAMERA
    np.testing.assert_allclose(about_head_up, about_camera_up, atol=1e-12)
    face_direction = about_head_up @ np.array([0.0, -1.0, 0.0])  # head -Y in camera axes
    assert face_direction[0] > 0  # toward camera +X, the image's right
    angles = head_rotation_angles(np.stack([FACING_CAMERA, about_head_up]))
    np.testing.assert_allclose(angles, [[0, 0, 0], [0.3, 0, 0]], atol=1e-12)
    path, _ = export(tmp_path, count=2, head_rotation=np.stack([FACING_CAMERA, about_head_up]))
    header, rows = read_rows(path)
    assert float(rows[1][header.index("HeadYaw")]) == pytest.approx(0.3, abs=1e-6)
    assert float(rows[1][header.index("HeadPitch")]) == 0.0


def test_yaw_pitch_roll_decompose_their_composition() -> None:
    yaw, pitch, roll = 0.4, -0.25, 0.15
    relative = rotation([0, 0, 1], yaw) @ rotation([1, 0, 0], pitch) @ rotation([0, 1, 0], roll)
    angles = head_rotation_angles((FACING_CAMERA @ relative)[None])
    np.testing.assert_allclose(angles[0], [yaw, pitch, roll], atol=1e-12)
    # Pitch > 0 tips the face down: the face direction gains camera +Y (image down).
    down = FACING_CAMERA @ rotation([1, 0, 0], 0.2) @ np.array([0.0, -1.0, 0.0])
    assert down[1] > 0


def test_eye_angles_columns(tmp_path: Path) -> None:
    eyes = np.array([[[0.1, -0.2], [0.3, 0.4]]])
    path, _ = export(tmp_path, count=1, eye_angles=eyes)
    header, rows = read_rows(path)
    values = {name: float(rows[0][header.index(name)]) for name in header[-6:]}
    assert values == {"LeftEyeYaw": 0.1, "LeftEyePitch": -0.2, "LeftEyeRoll": 0.0,
                      "RightEyeYaw": 0.3, "RightEyePitch": 0.4, "RightEyeRoll": 0.0}


def test_mismatched_shapes_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"take\.csv: head_rotation must be \(3, 3, 3\)"):
        export(tmp_path, head_rotation=np.zeros((2, 3, 3)))
    with pytest.raises(ValueError, match="repeat"):
        export(tmp_path, weight_names=["jawOpen", "jawOpen"])
    assert list(tmp_path.iterdir()) == []
