import numpy as np
import torch

from backend.formats.camera import centred_intrinsics, pose_matrix, project_points
from backend.head_space import HEAD_TO_FRONT_CAMERA
from backend.trackers.landmark_fit import FitConfig, fit_landmarks
from backend.trackers.rotation import axis_angle_to_matrix


def _synthetic_clip(head, frames=20, size=400, focal=500.0):
    t = np.linspace(0, 1, frames)[:, None]
    names = head.blendshape_names
    weights = np.zeros((frames, len(names)), np.float32)
    weights[:, names.index("jawOpen")] = 0.4 * np.sin(np.pi * t[:, 0])
    weights[:, names.index("mouthSmileLeft")] = 0.5 * t[:, 0]
    weights[:, names.index("mouthSmileRight")] = 0.5 * t[:, 0]
    rot = np.concatenate([0.2 * np.sin(3 * t), 0.3 * np.cos(2 * t) - 0.3, 0.05 * t], 1)
    rotation = axis_angle_to_matrix(torch.tensor(rot, dtype=torch.float32)).numpy() @ HEAD_TO_FRONT_CAMERA
    centre = head.vertices[head.landmark_vertex].mean(0)
    translation = np.array([0, 0, 0.6]) - centre @ HEAD_TO_FRONT_CAMERA.T + 0.02 * np.sin(2 * t) * [1, 0.5, -1]
    verts = head.posed_vertices(weights)[:, head.landmark_vertex]
    points = project_points(verts, pose_matrix(rotation, translation), centred_intrinsics(focal, size, size))
    return points.astype(np.float32), weights


def test_fit_recovers_a_synthetic_performance(default_head):
    points, weights = _synthetic_clip(default_head)
    conf = np.ones(points.shape[:2], np.float32)
    fit = fit_landmarks(default_head, points, conf, 400, 400, FitConfig(rigid_steps=150, full_steps=500))
    mask = default_head.landmark_mask
    err = np.linalg.norm(fit.projected - points, axis=-1)[:, mask]
    assert err.mean() < 1.0, err.mean()
    jaw = default_head.blendshape_names.index("jawOpen")
    assert np.abs(fit.weights[:, jaw] - weights[:, jaw]).mean() < 0.1
    assert (fit.weights >= 0).all() and (fit.weights <= 1).all()


def test_missing_frames_do_not_break_the_fit(default_head):
    points, _ = _synthetic_clip(default_head, frames=12)
    conf = np.ones(points.shape[:2], np.float32)
    conf[4:7] = 0  # three frames without a face
    fit = fit_landmarks(default_head, points, conf, 400, 400, FitConfig(rigid_steps=50, full_steps=100))
    assert np.isfinite(fit.rotation).all() and np.isnan(fit.residual_px[4:7]).all()

