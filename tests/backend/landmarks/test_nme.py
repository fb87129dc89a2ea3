"""The inter-ocular scale every landmark error is normalised by, and NME."""

from __future__ import annotations

import numpy as np
import pytest

from backend.landmarks.nme import LEFT_EYE_OUTER, RIGHT_EYE_OUTER, clip_inter_ocular, nme


def _faces(eye_distances: list[float]) -> np.ndarray:
    points = np.zeros((len(eye_distances), 68, 2), np.float32)
    points[:, RIGHT_EYE_OUTER, 0] = eye_distances
    return points


def test_nme_is_the_mean_error_over_the_truths_inter_ocular_distance():
    truth = _faces([40.0])
    predicted = truth + np.array([3.0, 4.0])  # every point 5 px off
    np.testing.assert_allclose(nme(predicted, truth), [5 / 40])
    mask = np.zeros(68, bool)
    mask[:10] = True
    np.testing.assert_allclose(nme(predicted, truth, mask), [5 / 40])


def test_nme_refuses_landmarks_of_other_shapes():
    with pytest.raises(ValueError, match="shapes differ"):
        nme(np.zeros((68, 2)), np.zeros((2, 68, 2)))


def test_clip_inter_ocular_falls_back_to_the_clip_median():
    points = _faces([40.0, 0.0, 50.0, 60.0])
    confidence = np.ones((4, 68), np.float32)
    confidence[3, LEFT_EYE_OUTER] = 0  # an eye corner not seen
    np.testing.assert_array_equal(clip_inter_ocular(points, confidence), [40, 45, 50, 45])
    assert clip_inter_ocular(points, confidence).dtype == np.float32
    # No frame with both corners: a scale of one pixel.
    np.testing.assert_array_equal(clip_inter_ocular(points, np.zeros((4, 68))), [1, 1, 1, 1])
