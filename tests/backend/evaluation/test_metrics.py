"""Metrics on constructed cases with known answers."""

import numpy as np
import pytest

from backend.evaluation.metrics import (
    clip_scale,
    fit_colour_transform,
    jitter_px,
    landmark_errors_px,
    matched_frames,
    photometric_error,
    rotation_errors_deg,
    vertex_errors_mm,
)
from backend.landmarks.nme import nme as landmark_nme

RNG = np.random.default_rng(0)
VERTICES = RNG.normal(0, 0.05, (5, 40, 3))
REGION = np.arange(40) < 30


def test_identical_meshes_score_zero():
    assert vertex_errors_mm(VERTICES, VERTICES, REGION).max() == 0


def test_a_known_offset_scores_that_offset():
    shifted = VERTICES + np.array([0.003, 0.0, 0.004])  # 5 mm
    np.testing.assert_allclose(vertex_errors_mm(shifted, VERTICES, REGION), 5.0)


def test_scale_alignment_removes_only_scale():
    assert clip_scale(VERTICES * 0.5, VERTICES, REGION) == pytest.approx(2.0)
    np.testing.assert_allclose(vertex_errors_mm(VERTICES * 0.5, VERTICES, REGION, align_scale=True),
                               0, atol=1e-9)
    assert vertex_errors_mm(VERTICES * 0.5, VERTICES, REGION).mean() > 1


def test_rotation_error():
    angle = np.radians(7.0)
    rot = np.array([[np.cos(angle), -np.sin(angle), 0], [np.sin(angle), np.cos(angle), 0], [0, 0, 1]])
    np.testing.assert_allclose(rotation_errors_deg(rot[None] @ np.eye(3)[None], np.eye(3)[None]), [7.0])
    np.testing.assert_allclose(rotation_errors_deg(np.eye(3)[None], np.eye(3)[None]), [0.0], atol=1e-6)


def test_landmarks_against_themselves_and_an_offset():
    points = RNG.uniform(0, 200, (4, 68, 2))
    assert landmark_nme(points, points).max() == 0
    np.testing.assert_allclose(landmark_errors_px(points + np.array([3.0, 4.0]), points), 5.0)
    mask = np.zeros(68, bool)
    mask[[36, 45]] = True
    assert landmark_errors_px(points, points, mask).shape == (4, 2)


def test_constant_and_uniformly_moving_tracks_have_zero_jitter():
    track = np.tile(RNG.uniform(0, 100, (1, 68, 2)), (10, 1, 1))
    assert jitter_px(track) == 0
    moving = track + np.arange(10)[:, None, None] * 2.0
    assert jitter_px(moving) == pytest.approx(0, abs=1e-12)
    shaky = track.copy()
    shaky[5] += [1.0, 0.0]
    assert jitter_px(shaky) > 0
    with pytest.raises(ValueError, match="3 frames"):
        jitter_px(track[:2])


def test_photometric_error_ignores_a_global_colour_transform():
    rendered = RNG.uniform(0, 1, (500, 3))
    observed = rendered @ np.diag([0.8, 1.1, 0.9]) + [0.05, -0.02, 0.1]
    assert photometric_error(rendered, observed) == pytest.approx(0, abs=1e-9)
    np.testing.assert_allclose(fit_colour_transform(rendered, observed)[:, :3], np.diag([0.8, 1.1, 0.9]),
                               atol=1e-9)
    assert photometric_error(rendered, RNG.uniform(0, 1, (500, 3))) > 0.2


def test_mismatches_are_errors_not_averages():
    with pytest.raises(ValueError, match="shapes differ"):
        vertex_errors_mm(VERTICES, VERTICES[:4], REGION)
    with pytest.raises(ValueError, match="region"):
        vertex_errors_mm(VERTICES, VERTICES, REGION[:10])
    with pytest.raises(ValueError, match="no ground truth"):
        matched_frames(np.array([0, 1, 9]), np.array([0, 1, 2]))
    assert matched_frames(np.array([2, 0]), np.array([0, 1, 2])).tolist() == [2, 0]
