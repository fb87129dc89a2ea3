"""Fitting the default head's identity to an actor: MakeHuman modifier coefficients shared over
a set of frames, jointly with each frame's expression and head pose and the clip's focal length,
to MediaPipe's 478 points (backend/identity/dense_landmarks.py).

The loss is the landmark fit's (backend/trackers/landmark_fit.py): a robust (Cauchy)
reprojection error in units of the frame's inter-ocular distance, the expression weights
bounded to [0, 1] with a sparsity prior, a weak prior on the focal length; plus a Gaussian
prior on the identity coefficients, which also holds what images cannot tell (the head's
overall size against its distance, the back of the head, the ears). Two stages: rigid pose and
focal alone, then everything. docs/identity.md has the choices and their measurements.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from ..config_parser import option
from ..formats.errors import BadInput
from ..formats.head_file import HeadAsset
from ..head_space import HEAD_TO_FRONT_CAMERA
from ..landmarks.reprojection_loss import cauchy_reprojection
from ..render.camera import centred_intrinsics, head_to_camera, pose_matrix
from ..render.rasterize import project
from ..staged_adam import minimise_in_stages
from ..trackers.rotation import axis_angle_to_matrix
from .dense_landmarks import DenseEmbedding
from .identity_basis import IdentityBasis, displacement

# MediaPipe's outer eye corners: the scale of a frame's residuals.
EYE_CORNERS = (33, 263)


@dataclass(frozen=True)
class IdentityFitConfig:
    """Weights and schedule of the identity fit (residuals in inter-ocular distances)."""

    rigid_steps: int = option(150, "steps fitting head poses and focal length alone")
    full_steps: int = option(600, "steps fitting identity, expressions, poses and focal together")
    learning_rate: float = option(0.02, "Adam's learning rate (decayed a hundredfold over each stage)")
    cauchy_scale: float = option(0.03, "residual (x inter-ocular distance) where the robust loss "
                                       "starts to flatten")
    identity_prior: float = option(0.1, "weight of the sum of squared identity coefficients")
    expression_sparsity: float = option(0.01, "weight of L1 on each frame's expression weights")
    focal_prior: float = option(0.05, "weight of (log f - log f0)^2, f0 = max(width, height)")
    focal_px: float | None = option(None, "the camera's focal length in pixels when known (it is "
                                          "then held; default: fitted from max(width, height))")
    shading_steps: int = option(400, "steps refining the identity by the face's shading after the "
                                     "landmark fit (about 0.3 s each on 2 cores; 0: none; docs/identity.md)")
    shading_weight: float = option(3.0, "weight of the shading's colour error against the landmarks")

    def __post_init__(self) -> None:
        if self.shading_steps < 0 or not self.shading_weight >= 0:
            raise BadInput(f"--shading-steps {self.shading_steps} --shading-weight {self.shading_weight}: "
                           "need 0 or more of each")
        if self.rigid_steps < 0 or self.full_steps < 1:
            raise BadInput(f"--rigid-steps {self.rigid_steps} --full-steps {self.full_steps}: "
                           "need rigid steps >= 0 and full steps >= 1")
        for name in ("learning_rate", "cauchy_scale"):
            if not getattr(self, name) > 0:
                raise BadInput(f"--{name.replace('_', '-')} {getattr(self, name)}: must be above 0")
        if self.focal_px is not None and not self.focal_px > 0:
            raise BadInput(f"--focal-px {self.focal_px}: must be above 0 (pixels)")
        for name in ("identity_prior", "expression_sparsity", "focal_prior"):
            if not getattr(self, name) >= 0:
                raise BadInput(f"--{name.replace('_', '-')} {getattr(self, name)}: must be 0 or more")


@dataclass
class IdentityFit:
    """coefficients (N,) of the basis; rotation (F, 3, 3) and translation (F, 3) head ->
    camera (metres); weights (F, K) the head's blendshapes; focal pixels; residual_px (F,)
    mean distance of the fitted points to the detections, per frame."""

    coefficients: np.ndarray
    rotation: np.ndarray
    translation: np.ndarray
    weights: np.ndarray
    focal: float
    residual_px: np.ndarray


def fit_identity(head: HeadAsset, basis: IdentityBasis, embedding: DenseEmbedding,
                 points: np.ndarray, width: int, height: int,
                 config: IdentityFitConfig | None = None, device: str = "cpu",
                 on_step: Callable[[int, int], None] | None = None) -> IdentityFit:
    """Fit frames whose MediaPipe points (F, 478, 2) pixels were all found (a frame without a
    face has no place here: the caller leaves it out)."""
    cfg = config or IdentityFitConfig()
    dev = torch.device(device)
    num_frames = points.shape[0]

    def at_points(deltas: np.ndarray) -> torch.Tensor:
        return torch.as_tensor(embedding.basis_at_points(deltas, head.faces), dtype=torch.float32,
                               device=dev)

    rest = at_points(head.vertices[None])[0]  # (P, 3)
    incr, decr = at_points(basis.incr), at_points(basis.decr)  # (N, P, 3)
    shapes = at_points(head.blendshapes)  # (K, P, 3)
    lower = torch.as_tensor(basis.lower, dtype=torch.float32, device=dev)
    upper = torch.as_tensor(basis.upper, dtype=torch.float32, device=dev)
    target = torch.as_tensor(points, dtype=torch.float32, device=dev)
    weight = torch.as_tensor(np.tile(embedding.mask, (num_frames, 1)), dtype=torch.float32,
                             device=dev)
    iod = np.linalg.norm(points[:, EYE_CORNERS[0]] - points[:, EYE_CORNERS[1]], axis=-1)
    scale = torch.as_tensor(np.maximum(iod, 1.0), dtype=torch.float32, device=dev)[:, None]

    focal0 = float(cfg.focal_px or max(width, height))
    base_rotation = torch.as_tensor(HEAD_TO_FRONT_CAMERA, dtype=torch.float32, device=dev)
    rot = torch.zeros(num_frames, 3, device=dev, requires_grad=True)
    trans = torch.as_tensor(_initial_translation(rest.cpu().numpy(), points, embedding.mask, focal0,
                                                 width, height), device=dev).requires_grad_(True)
    coefficients = torch.zeros(basis.size, device=dev, requires_grad=True)
    expression = torch.zeros(num_frames, shapes.shape[0], device=dev, requires_grad=True)
    log_focal = torch.tensor(float(np.log(focal0)), device=dev, requires_grad=True)

    def rotation() -> torch.Tensor:
        return axis_angle_to_matrix(rot) @ base_rotation

    def fitted_points() -> torch.Tensor:
        local = rest + displacement(coefficients, incr, decr) + torch.einsum("fk,kpc->fpc", expression, shapes)
        camera_points = head_to_camera(local, pose_matrix(rotation(), trans))
        return project(camera_points, centred_intrinsics(log_focal.exp(), width, height))[..., :2]

    def landmark_loss() -> torch.Tensor:
        data = cauchy_reprojection(fitted_points(), target, weight, scale, cfg.cauchy_scale)
        prior = cfg.identity_prior * (coefficients**2).sum()
        prior = prior + cfg.expression_sparsity * expression.abs().sum(1).mean()
        prior = prior + cfg.focal_prior * (log_focal - np.log(focal0)) ** 2
        return data + prior

    focal = [] if cfg.focal_px else [log_focal]
    stages = (([rot, trans, *focal], cfg.rigid_steps),
              ([rot, trans, *focal, coefficients, expression], cfg.full_steps))

    def constrain() -> None:
        coefficients.copy_(torch.maximum(torch.minimum(coefficients, upper), lower))
        expression.clamp_(0.0, 1.0)

    minimise_in_stages(landmark_loss, stages, cfg.learning_rate, constrain, on_step)

    with torch.no_grad():
        projected = fitted_points()
        fitted_rotation = rotation()
    error = np.linalg.norm(projected.cpu().numpy() - points, axis=-1)[:, embedding.mask]
    return IdentityFit(
        coefficients=coefficients.detach().cpu().numpy().astype(np.float64),
        rotation=fitted_rotation.cpu().numpy(),
        translation=trans.detach().cpu().numpy(),
        weights=expression.detach().cpu().numpy(),
        focal=float(log_focal.detach().exp()),
        residual_px=error.mean(1).astype(np.float32),
    )


def _initial_translation(rest: np.ndarray, points: np.ndarray, mask: np.ndarray, focal: float,
                         width: int, height: int) -> np.ndarray:
    """(F, 3) translation placing the frontal head (points (P, 3)) under each frame's point
    centroid at the depth where its eye-corner distance matches the detected one."""
    eyes_m = float(np.linalg.norm(rest[EYE_CORNERS[0]] - rest[EYE_CORNERS[1]]))
    eyes_px = np.maximum(np.linalg.norm(points[:, EYE_CORNERS[0]] - points[:, EYE_CORNERS[1]], axis=-1), 1.0)
    depth = focal * eyes_m / eyes_px
    centroid = points[:, mask].mean(1)
    principal = np.array([(width - 1) / 2, (height - 1) / 2])
    centre = HEAD_TO_FRONT_CAMERA @ rest[mask].mean(0)
    x = (centroid[:, 0] - principal[0]) * depth / focal - centre[0]
    y = (centroid[:, 1] - principal[1]) * depth / focal - centre[1]
    return np.stack([x, y, depth - centre[2]], axis=1).astype(np.float32)
