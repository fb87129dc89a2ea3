"""The robust landmark reprojection error the landmark-driven fits share (the landmark fit
tracker, the identity fit and its shading refinement)."""

from __future__ import annotations

import torch


def cauchy_reprojection(projected: torch.Tensor, target: torch.Tensor, weight: torch.Tensor,
                        inter_ocular: torch.Tensor, cauchy_scale: float) -> torch.Tensor:
    """The weighted mean of log(1 + (r / cauchy_scale)^2), r each point's reprojection error in
    units of its frame's inter-ocular distance: about (r / cauchy_scale)^2 for an inlier,
    logarithmic for an outlier (a misdetected point cannot drag the fit). Unitless.

    projected, target: (F, P, 2) pixels; weight: (F, P) or (P,), 0 for points not fitted;
    inter_ocular: (F, 1) pixels."""
    r2 = ((projected - target) ** 2).sum(-1) / inter_ocular**2
    weight = weight.expand_as(r2)
    return (weight * torch.log1p(r2 / cauchy_scale**2)).sum() / weight.sum().clamp(min=1)
