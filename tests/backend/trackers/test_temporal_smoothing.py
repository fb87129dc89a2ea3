"""Temporal smoothing of per-frame codes and poses: noise goes down where the face moves
slowly, a fast-moving face keeps its own frames, a still trajectory and frames without a face
stay as they were, gaps are never bridged, rotations stay rotations."""

from __future__ import annotations

import numpy as np
from scipy.spatial.transform import Rotation

from backend.trackers.temporal_smoothing import smooth_over_time


def _trajectory(frames: int, noise: float, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    latent = np.sin(np.linspace(0, 2, frames))[:, None] * np.ones((1, 8)) + noise * rng.normal(size=(frames, 8))
    angles = np.stack([np.linspace(0, 0.5, frames), np.zeros(frames), np.zeros(frames)], 1)
    pose = np.tile(np.eye(4), (frames, 1, 1))
    pose[:, :3, :3] = Rotation.from_rotvec(angles + noise * rng.normal(size=(frames, 3))).as_matrix()
    pose[:, :3, 3] = [0, 0, 0.5] + noise * rng.normal(size=(frames, 3))
    return latent.astype(np.float32), pose.astype(np.float32)


def _landmarks(frames: int, speed: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Detections moving `speed` inter-ocular distances per frame (the eye distance is 50 px)."""
    rng = np.random.default_rng(1)
    base = rng.uniform(0, 50, (68, 2))
    points = base[None] + (speed * 50 * np.arange(frames))[:, None, None] * np.array([1.0, 0.0])
    return points.astype(np.float32), np.ones((frames, 68), np.float32), np.full(frames, 50, np.float32)


def _smooth(latent, pose, tracked, sigma, speed=0.0):
    return smooth_over_time(latent, pose, tracked, sigma, *_landmarks(len(latent), speed))


def _second_difference(values: np.ndarray) -> float:
    return float(np.abs(np.diff(values, 2, axis=0)).mean())


def test_noise_goes_down_and_rotations_stay_rotations():
    latent, pose = _trajectory(60, 0.02)
    smooth_latent, smooth_pose = _smooth(latent, pose, np.ones(60, bool), 1.0)
    assert _second_difference(smooth_latent) < 0.4 * _second_difference(latent)
    assert _second_difference(smooth_pose[:, :3, 3]) < 0.4 * _second_difference(pose[:, :3, 3])
    rotations = smooth_pose[:, :3, :3].astype(np.float64)
    identity = np.tile(np.eye(3), (60, 1, 1))
    np.testing.assert_allclose(rotations @ rotations.transpose(0, 2, 1), identity, atol=1e-5)
    assert (np.linalg.det(rotations) > 0.999).all()
    clean_latent, _ = _trajectory(60, 0.0)
    assert np.abs(smooth_latent - clean_latent).mean() < np.abs(latent - clean_latent).mean()


def test_a_still_trajectory_and_sigma_zero_change_nothing():
    latent, pose = _trajectory(20, 0.02)
    same_latent, same_pose = _smooth(latent, pose, np.ones(20, bool), 0.0)
    np.testing.assert_array_equal(same_latent, latent)
    np.testing.assert_array_equal(same_pose, pose)
    still_latent, still_pose = np.repeat(latent[:1], 20, 0), np.repeat(pose[:1], 20, 0)
    out_latent, out_pose = _smooth(still_latent, still_pose, np.ones(20, bool), 2.0)
    np.testing.assert_allclose(out_latent, still_latent, atol=1e-6)
    np.testing.assert_allclose(out_pose, still_pose, atol=1e-6)


def test_frames_without_a_face_are_untouched_and_gaps_are_not_bridged():
    latent, pose = _trajectory(12, 0.0)
    latent[6:] += 5.0  # a cut after an untracked frame: the two runs must not blend
    tracked = np.ones(12, bool)
    tracked[5] = False
    out_latent, out_pose = _smooth(latent, pose, tracked, 2.0)
    np.testing.assert_array_equal(out_latent[5], latent[5])
    np.testing.assert_array_equal(out_pose[5], pose[5])
    assert out_latent[:5].max() < latent[:5].max() + 0.01  # nothing of the +5 leaks back
    assert out_latent[6:].min() > latent[6:].min() - 0.01


def test_a_fast_moving_face_keeps_its_own_frames():
    latent, pose = _trajectory(30, 0.02)
    slow_latent, _ = _smooth(latent, pose, np.ones(30, bool), 1.0, speed=0.005)
    fast_latent, fast_pose = _smooth(latent, pose, np.ones(30, bool), 1.0, speed=0.2)
    assert np.abs(slow_latent - latent).mean() > 0.005
    np.testing.assert_allclose(fast_latent, latent, atol=1e-4)  # weight exp(-16) for a neighbour
    np.testing.assert_allclose(fast_pose, pose, atol=1e-4)
