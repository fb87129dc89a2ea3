"""The shared robust reprojection error: quadratic for small residuals, logarithmic for
outliers, in inter-ocular units, points of weight 0 ignored."""

from __future__ import annotations

import math

import torch

from backend.landmarks.reprojection_loss import cauchy_reprojection


def _loss(offset_px: float, inter_ocular_px: float = 50.0, weight: torch.Tensor | None = None) -> float:
    target = torch.zeros(2, 4, 2)
    projected = target.clone()
    projected[..., 0] += offset_px
    weight = torch.ones(4) if weight is None else weight
    return float(cauchy_reprojection(projected, target, weight, torch.full((2, 1), inter_ocular_px), 0.05))


def test_small_residuals_are_quadratic_and_measured_in_eye_distances():
    assert math.isclose(_loss(0.5), math.log1p((0.5 / 50 / 0.05) ** 2), rel_tol=1e-5)
    assert math.isclose(_loss(0.25) * 4, _loss(0.5), rel_tol=0.02)  # about quadratic
    assert math.isclose(_loss(1.0, inter_ocular_px=100.0), _loss(0.5), rel_tol=1e-5)


def test_an_outlier_counts_logarithmically_and_a_zero_weight_point_not_at_all():
    assert _loss(500.0) < 2 * _loss(50.0)  # ten times the residual, far less than 100 times the loss
    target = torch.zeros(1, 2, 2)
    projected = torch.tensor([[[1.0, 0.0], [900.0, 0.0]]])
    weight, eyes = torch.tensor([1.0, 0.0]), torch.full((1, 1), 50.0)
    only_first = cauchy_reprojection(projected, target, weight, eyes, 0.05)
    assert math.isclose(float(only_first), math.log1p((1 / 50 / 0.05) ** 2), rel_tol=1e-5)
