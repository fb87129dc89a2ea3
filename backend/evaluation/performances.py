"""Performances for rendered clips: per-frame blendshape weights and rigid head motion.

A performance is what a head does in a ground-truth clip, independent of how the clip is lit,
framed or degraded. Two sources:

- `procedural_performance`: smooth seeded trajectories of the channels faces use most (jaw,
  smile, blinks, brows, pucker/funnel) with the co-activations real faces show (cheeks and lids
  squint with a smile, the lower lip follows the jaw, a smile excludes a pucker), and smooth
  head turns about the neck pivot (within yaw +-20 degrees, or sweeping to a given yaw).
- `measured_performance`: MediaPipe Face Landmarker's 52 blendshape scores and head rotation
  measured frame by frame on a real clip, so timing, amplitudes and co-activations are a real
  person's.

Either is a `formats.clip_files.Performance`, saved as `performance.npz` for the Blender-side
program `blender_addon/render_clip.py` to render.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from ..formats.clip_files import Performance
from ..formats.errors import BadInput
from ..formats.head_file import HeadAsset

MAX_YAW_DEG, MAX_PITCH_DEG, MAX_ROLL_DEG = 20.0, 10.0, 5.0
MAX_TRANSLATION_M = 0.01  # procedural head shift per axis
MAX_MEASURED_SHIFT_M = 0.03  # a measured head shift is clipped to this per axis
# OpenCV camera axes (+X right, +Y down, +Z forward) -> the renderer's world, whose camera looks
# along +Y with +Z up: columns are the camera axes in world coordinates.
CAMERA_TO_WORLD_AXES = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, -1.0, 0.0]])


# --- procedural --------------------------------------------------------------------------


def _wave(rng: np.random.Generator, t: np.ndarray, lo_hz: float, hi_hz: float) -> np.ndarray:
    """Smooth signal in [-1, 1]: a normalised sum of three random sinusoids. t (F,) seconds."""
    freq = rng.uniform(lo_hz, hi_hz, 3)[:, None]
    phase = rng.uniform(0.0, 2.0 * math.pi, 3)[:, None]
    amp = rng.uniform(0.5, 1.0, 3)[:, None]
    return (amp * np.sin(2.0 * math.pi * freq * t + phase)).sum(0) / amp.sum()


def _activation(rng: np.random.Generator, t: np.ndarray, peak: float, lo_hz: float,
                hi_hz: float) -> np.ndarray:
    """Smooth activation in [0, peak] (F,): a wave through a smoothstep, so it rests at 0 for a
    while and rises in bumps instead of oscillating about a mid value."""
    x = np.clip((_wave(rng, t, lo_hz, hi_hz) + 0.3) / 1.1, 0.0, 1.0)
    return peak * x * x * (3.0 - 2.0 * x)


def _blinks(rng: np.random.Generator, t: np.ndarray, fps: float) -> np.ndarray:
    """Eyelid closure in [0, 1] (F,): short blinks every 1.5-4 s, the first within 1.2 s.

    A blink closes fast and opens more slowly (asymmetric Gaussian, 50 ms / 90 ms); its centre is
    snapped to a frame so the lids close fully on at least one frame.
    """
    closure = np.zeros_like(t)
    centre = rng.uniform(0.3, 1.2)
    while centre < t[-1] + 0.5:
        c = round(centre * fps) / fps
        sigma = np.where(t < c, 0.05, 0.09)
        closure = np.maximum(closure, np.exp(-0.5 * ((t - c) / sigma) ** 2))
        centre += rng.uniform(1.5, 4.0)
    return closure


def procedural_weights(names: tuple[str, ...], n_frames: int, fps: float,
                       rng: np.random.Generator) -> np.ndarray:
    """Per-frame weights (F, K) float32 in [0, 1] for the channels `names` (ARKit spelling; a
    split channel such as ICT's `browInnerUp_L` follows its ARKit channel)."""
    from ..heads.arkit import arkit_channel

    t = np.arange(n_frames) / fps
    jaw = _activation(rng, t, 0.6, 0.4, 1.6)
    smile = _activation(rng, t, 0.8, 0.15, 0.6)
    smile_tilt = 1.0 + 0.15 * _wave(rng, t, 0.1, 0.3)  # smiles are slightly one-sided
    blink = _blinks(rng, t, fps)
    brow_up = _activation(rng, t, 0.6, 0.2, 0.8)
    brow_down = _activation(rng, t, 0.5, 0.2, 0.8) * (1.0 - brow_up / 0.6)
    # Pursed lips and a smile exclude each other.
    pucker = _activation(rng, t, 0.5, 0.2, 0.7) * (1.0 - smile / 0.8) ** 2
    funnel = _activation(rng, t, 0.4, 0.2, 0.7) * (1.0 - smile / 0.8) ** 2
    channels = {
        "jawOpen": jaw,
        "mouthSmileLeft": smile * smile_tilt,
        "mouthSmileRight": smile / smile_tilt,
        "eyeBlinkLeft": blink,
        "eyeBlinkRight": blink,
        "browInnerUp": brow_up,
        "browOuterUpLeft": 0.4 * brow_up,
        "browOuterUpRight": 0.4 * brow_up,
        "browDownLeft": brow_down,
        "browDownRight": 0.9 * brow_down,
        "mouthPucker": pucker,
        "mouthFunnel": funnel,
        "cheekSquintLeft": 0.35 * smile * smile_tilt,
        "cheekSquintRight": 0.35 * smile / smile_tilt,
        "eyeSquintLeft": 0.2 * smile + 0.2 * brow_down,
        "eyeSquintRight": 0.2 * smile + 0.2 * brow_down,
        "mouthLowerDownLeft": 0.25 * jaw,
        "mouthLowerDownRight": 0.25 * jaw,
    }
    weights = np.zeros((n_frames, len(names)), np.float32)
    for k, name in enumerate(names):
        channel = arkit_channel(name)
        if channel in channels:
            weights[:, k] = np.clip(channels[channel], 0.0, 1.0)
    return weights


def rotation_zxy(yaw: float, pitch: float, roll: float) -> np.ndarray:
    """Head rotation (3, 3) in head axes: yaw about +Z (up), pitch about +X, roll about +Y (the
    viewing axis), radians, applied roll first."""
    cy, sy = math.cos(yaw), math.sin(yaw)
    cp, sp = math.cos(pitch), math.sin(pitch)
    cr, sr = math.cos(roll), math.sin(roll)
    rz = np.array([[cy, -sy, 0.0], [sy, cy, 0.0], [0.0, 0.0, 1.0]])
    rx = np.array([[1.0, 0.0, 0.0], [0.0, cp, -sp], [0.0, sp, cp]])
    ry = np.array([[cr, 0.0, sr], [0.0, 1.0, 0.0], [-sr, 0.0, cr]])
    return rz @ rx @ ry


def procedural_motion(n_frames: int, fps: float, rng: np.random.Generator,
                      yaw_deg: float | None = None) -> np.ndarray:
    """Rigid head motion (F, 4, 4) float64, head space -> world: smooth turns about the neck
    pivot within yaw +-20, pitch +-10, roll +-5 degrees and a shift within +-1 cm per axis.
    With `yaw_deg`, the same yaw wave is stretched so that its largest turn over the clip is
    exactly yaw_deg degrees (a clip of large head turns); the rest is unchanged."""
    t = np.arange(n_frames) / fps
    wave = _wave(rng, t, 0.2, 0.6)
    if yaw_deg is None:
        yaw = math.radians(MAX_YAW_DEG) * wave
    else:
        yaw = math.radians(yaw_deg) * wave / max(float(np.abs(wave).max()), 1e-9)
    pitch = math.radians(MAX_PITCH_DEG) * _wave(rng, t, 0.2, 0.7)
    roll = math.radians(MAX_ROLL_DEG) * _wave(rng, t, 0.1, 0.4)
    shift = MAX_TRANSLATION_M * np.stack([_wave(rng, t, 0.1, 0.5) for _ in range(3)], 1)
    motion = np.tile(np.eye(4), (n_frames, 1, 1))
    for i in range(n_frames):
        motion[i, :3, :3] = rotation_zxy(yaw[i], pitch[i], roll[i])
        motion[i, :3, 3] = shift[i]
    return motion


def procedural_performance(names: tuple[str, ...], n_frames: int, fps: float,
                           seed: int, yaw_deg: float | None = None) -> Performance:
    """A seeded procedural performance of `n_frames` frames for a head with channels `names`;
    yaw_deg: see procedural_motion (None: the usual turns within +-20 degrees)."""
    if n_frames < 1 or not fps > 0:
        raise BadInput(f"a performance needs frames >= 1 and fps > 0 (got {n_frames}, {fps})")
    rng = np.random.default_rng([seed, 0])
    weights = procedural_weights(names, n_frames, fps, rng)
    source = f"procedural (seed {seed})" if yaw_deg is None else \
        f"procedural (seed {seed}, yaw to {yaw_deg:g} degrees)"
    return Performance(tuple(names), weights, procedural_motion(n_frames, fps, rng, yaw_deg), fps,
                       source)


# --- measured on a real clip -------------------------------------------------------------


def mean_rotation(rotations: np.ndarray) -> np.ndarray:
    """Chordal mean (3, 3) of rotations (N, 3, 3): the rotation closest to their average."""
    u, _, vt = np.linalg.svd(rotations.mean(0))
    return u @ np.diag([1.0, 1.0, np.sign(np.linalg.det(u @ vt))]) @ vt


def motion_from_camera_poses(poses: np.ndarray) -> np.ndarray:
    """Head motion (F, 4, 4) head -> world reproducing measured head poses (F, 4, 4, head ->
    OpenCV camera) relative to their mean: the rendered head faces the camera on average and
    turns and shifts as the measured one did (shifts clipped to MAX_MEASURED_SHIFT_M)."""
    rotations, shifts = poses[:, :3, :3], poses[:, :3, 3]
    reference = mean_rotation(rotations)
    motion = np.tile(np.eye(4), (len(poses), 1, 1))
    axes = CAMERA_TO_WORLD_AXES
    motion[:, :3, :3] = axes @ rotations @ reference.T @ axes.T
    centred = (shifts - np.median(shifts, 0)) @ axes.T
    motion[:, :3, 3] = np.clip(centred, -MAX_MEASURED_SHIFT_M, MAX_MEASURED_SHIFT_M)
    return motion


def measured_performance(video: Path, head: HeadAsset, n_frames: int | None) -> Performance:
    """The performance MediaPipe Face Landmarker measures on the first `n_frames` frames of a
    real clip (all when None): its blendshape scores on the head's channels and its head
    rotation and shift. Frames where it finds no face hold the nearest measured frame."""
    from ..footage import Footage
    from ..trackers.mediapipe_blendshapes import track_face_landmarker
    from ..trackers.registry import tracker_entry
    from ..trackers.untracked_frames import hold_untracked

    footage = Footage(Path(video))
    count = footage.info.frame_count if n_frames is None else min(n_frames, footage.info.frame_count)
    frames = (image for _, image in footage.frames(0, count - 1))
    task_path, canonical_obj = tracker_entry("mediapipe-blendshapes").resolve_data_files()
    track = track_face_landmarker(frames, footage.info.fps, head, task_path, canonical_obj)
    if track.found.mean() < 0.5:
        raise BadInput(f"{video}: MediaPipe found a face in only {track.found.sum()} of {count} "
                       "frames; pick a clip with a visible face as a trajectory source")
    weights = np.clip(hold_untracked(track.weights, track.found), 0.0, 1.0)
    motion = motion_from_camera_poses(hold_untracked(track.head_pose.astype(np.float64), track.found))
    return Performance(tuple(head.blendshape_names), weights.astype(np.float32), motion,
                       footage.info.fps, f"MediaPipe Face Landmarker on {Path(video).name} "
                       f"(frames 0-{count - 1})")

