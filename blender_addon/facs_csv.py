"""ARKit weights exported as the CSV Epic's Live Link Face iPhone app records, so a FaceAdapt
clip drives whatever already reads those takes (Unreal's Live Link Face importer, MetaHuman
tools, Maya/Blender CSV importers).

Layout: a header row `Timecode,BlendshapeCount,` + 52 blendshape columns + 9 rotation columns;
then one row per frame: the timecode, 61, and 61 numbers. What was checked, and against what:
the column names and order (LIVE_LINK_FACE_COLUMNS; note JawRight before JawLeft and MouthRight
before MouthLeft, unlike the app's UDP stream order) and the `BlendshapeCount` spelling agree
with a header quoted byte for byte from a real capture in a public repository's tests, and with
the same order in several open-source Live Link Face CSV importers (some spell the column
`BlendShapeCount`). Not checked against the app itself: the line ending (this writes `\\n`),
the number format, the units and signs of the rotation columns (here radians, the convention
in `head_rotation_angles`), and what the app's sub-frame digits mean (here thousandths of a
frame).

Timecode `HH:MM:SS:FF.mmm`: the source frame index counted at the clip's nominal frame rate
(round(fps): 29.97 footage counts 30 labels a second, non-drop-frame), FF the frame within the
second, mmm thousandths of a frame (000 for whole frames); source frame 0 is 00:00:00:00.000.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..backend.formats.atomic import atomic_file
from ..backend.heads.arkit import ARKIT_NAMES

LIVE_LINK_FACE_BLENDSHAPES = (
    "EyeBlinkLeft", "EyeLookDownLeft", "EyeLookInLeft", "EyeLookOutLeft", "EyeLookUpLeft",
    "EyeSquintLeft", "EyeWideLeft", "EyeBlinkRight", "EyeLookDownRight", "EyeLookInRight",
    "EyeLookOutRight", "EyeLookUpRight", "EyeSquintRight", "EyeWideRight", "JawForward",
    "JawRight", "JawLeft", "JawOpen", "MouthClose", "MouthFunnel", "MouthPucker", "MouthRight",
    "MouthLeft", "MouthSmileLeft", "MouthSmileRight", "MouthFrownLeft", "MouthFrownRight",
    "MouthDimpleLeft", "MouthDimpleRight", "MouthStretchLeft", "MouthStretchRight",
    "MouthRollLower", "MouthRollUpper", "MouthShrugLower", "MouthShrugUpper", "MouthPressLeft",
    "MouthPressRight", "MouthLowerDownLeft", "MouthLowerDownRight", "MouthUpperUpLeft",
    "MouthUpperUpRight", "BrowDownLeft", "BrowDownRight", "BrowInnerUp", "BrowOuterUpLeft",
    "BrowOuterUpRight", "CheekPuff", "CheekSquintLeft", "CheekSquintRight", "NoseSneerLeft",
    "NoseSneerRight", "TongueOut",
)
ROTATION_COLUMNS = ("HeadYaw", "HeadPitch", "HeadRoll", "LeftEyeYaw", "LeftEyePitch",
                    "LeftEyeRoll", "RightEyeYaw", "RightEyePitch", "RightEyeRoll")
LIVE_LINK_FACE_COLUMNS = LIVE_LINK_FACE_BLENDSHAPES + ROTATION_COLUMNS
HEADER = ("Timecode", "BlendshapeCount", *LIVE_LINK_FACE_COLUMNS)
# The ARKit channel (Apple's spelling, eyeBlinkLeft) of each blendshape column.
_COLUMN_CHANNEL = {column: column[0].lower() + column[1:] for column in LIVE_LINK_FACE_BLENDSHAPES}

# Head space axes of a head facing the camera, in camera (OpenCV) axes: head +X -> camera +X,
# head +Z (up) -> camera -Y (down), head -Y (the face's direction) -> camera -Z (toward it).
FACING_CAMERA = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, -1.0], [0.0, 1.0, 0.0]])


@dataclass
class FacsCsvReport:
    """What an export wrote: `rows` frames; `written` the ARKit channels filled from the
    weights, `missing` those written as 0.0, `ignored` weight names that are no ARKit channel."""

    path: Path
    rows: int
    written: list[str]
    missing: list[str]
    ignored: list[str]


def live_link_timecode(frame: float, fps: float) -> str:
    """`HH:MM:SS:FF.mmm` of source frame `frame` (fractional frames give mmm > 000)."""
    rate = max(1, round(fps))
    whole = math.floor(frame)
    thousandths = round((frame - whole) * 1000)
    if thousandths == 1000:  # 0.9996 of a frame is the next whole frame, not ".1000"
        whole, thousandths = whole + 1, 0
    seconds, within = divmod(whole, rate)
    minutes, second = divmod(seconds, 60)
    hours, minute = divmod(minutes, 60)
    return f"{hours:02d}:{minute:02d}:{second:02d}:{within:02d}.{thousandths:03d}"


def head_rotation_angles(head_to_camera: np.ndarray) -> np.ndarray:
    """(F, 3) yaw, pitch, roll in radians of head-to-camera rotations (F, 3, 3) (OpenCV
    camera axes), relative to the head facing the camera (FACING_CAMERA: all three 0).

    The relative rotation A = FACING_CAMERA^T @ R, in the axes of a head facing the camera
    (X: the actor's left, the image's right; Y: away from the camera; Z: up), is decomposed as
    A = Rz(yaw) @ Rx(pitch) @ Ry(roll), which is Blender's Euler mode 'YXZ' with
    (x, y, z) = (pitch, roll, yaw). Signs follow the right-hand rule about those axes: yaw > 0
    turns the face toward the image's right, pitch > 0 tips the face down, roll > 0 tilts the
    top of the head toward the image's right."""
    relative = FACING_CAMERA.T @ np.asarray(head_to_camera, dtype=np.float64)
    # With A = Rz Rx Ry: A[2,1] = sin(pitch); A[0,1] = -sin(yaw) cos(pitch),
    # A[1,1] = cos(yaw) cos(pitch); A[2,0] = -cos(pitch) sin(roll), A[2,2] = cos(pitch) cos(roll).
    pitch = np.arcsin(np.clip(relative[:, 2, 1], -1.0, 1.0))
    yaw = np.arctan2(-relative[:, 0, 1], relative[:, 1, 1])
    roll = np.arctan2(-relative[:, 2, 0], relative[:, 2, 2])
    return np.stack([yaw, pitch, roll], axis=1)


def write_live_link_csv(path: Path, weights: np.ndarray, weight_names: list[str],
                        head_rotation: np.ndarray, frames: np.ndarray, fps: float,
                        eye_angles: np.ndarray | None = None) -> FacsCsvReport:
    """Write `weights` (F, K) named by `weight_names` (K,) (ARKit spelling; channels absent are
    0.0, other names ignored and reported) as a Live Link Face CSV at `path`, atomically.

    head_rotation (F, 3, 3): head-to-camera rotations (results' head_pose[:, :3, :3]), written
    as HeadYaw/HeadPitch/HeadRoll in radians (`head_rotation_angles`). eye_angles (F, 2, 2):
    [frame, left/right eye, yaw/pitch] in radians, roll 0; None writes 0 for the eyes.
    frames (F,): source frame indices (the timecodes); fps: the clip's frame rate."""
    path = Path(path)
    weights = np.asarray(weights)
    count = len(weights)
    names = [str(name) for name in weight_names]
    if weights.ndim != 2 or weights.shape[1] != len(names):
        raise ValueError(f"{path}: weights must be (frames, {len(names)}) for {len(names)} "
                         f"weight names, got {weights.shape}")
    if len(set(names)) != len(names):
        raise ValueError(f"{path}: weight names repeat a channel: {sorted(names)}")
    expected = {"head_rotation": (head_rotation, (count, 3, 3)), "frames": (frames, (count,))}
    if eye_angles is not None:
        expected["eye_angles"] = (eye_angles, (count, 2, 2))
    for label, (array, shape) in expected.items():
        if np.shape(array) != shape:
            raise ValueError(f"{path}: {label} must be {shape} for {count} frames, got "
                             f"{np.shape(array)}")
    if not fps > 0:
        raise ValueError(f"{path}: fps must be above 0, got {fps}")
    table = np.zeros((count, len(LIVE_LINK_FACE_COLUMNS)))
    column_of = {channel: i for i, channel in enumerate(_COLUMN_CHANNEL.values())}
    for k, name in enumerate(names):
        if name in column_of:
            table[:, column_of[name]] = weights[:, k]
    blendshapes = len(LIVE_LINK_FACE_BLENDSHAPES)
    table[:, blendshapes:blendshapes + 3] = head_rotation_angles(head_rotation)
    if eye_angles is not None:
        eyes = np.asarray(eye_angles, dtype=np.float64)
        table[:, blendshapes + 3:blendshapes + 5] = eyes[:, 0]  # left yaw, pitch
        table[:, blendshapes + 6:blendshapes + 8] = eyes[:, 1]  # right yaw, pitch
    if not np.isfinite(table).all():
        raise ValueError(f"{path}: weights or rotations contain NaN or inf")
    # Rounded first, then + 0.0: a -1e-9 (or -0.0) prints as 0.000000, not -0.000000.
    table = np.round(table, 6) + 0.0
    lines = [",".join(HEADER)]
    for frame, row in zip(np.asarray(frames).tolist(), table, strict=True):
        values = ",".join(f"{value:.6f}" for value in row)
        lines.append(f"{live_link_timecode(frame, fps)},{len(LIVE_LINK_FACE_COLUMNS)},{values}")
    with atomic_file(path) as tmp:
        tmp.write_text("\n".join(lines) + "\n", encoding="utf-8", newline="\n")
    return FacsCsvReport(
        path=path, rows=count,
        written=[name for name in ARKIT_NAMES if name in names],
        missing=[name for name in ARKIT_NAMES if name not in names],
        ignored=[name for name in names if name not in column_of])
