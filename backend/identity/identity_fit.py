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
from ..render.camera import centred_intrinsics, head_to_camera, pose_matrix
from ..render.rasterize import project
from ..trackers.rotation import axis_angle_to_matrix
from .dense_landmarks import DenseEmbedding
from .identity_basis import IdentityBasis

# MediaPipe's outer eye corners: the scale of a frame's residuals.
EYE_CORNERS = (33, 263)


@dataclass(frozen=True)
class IdentityFitConfig:
    """Weights and schedule of the identity fit (residuals in inter-ocular distances)."""

    rigid_steps: int = option(150, "steps fitting head poses and focal length alone")
    full_steps: int = option(600, "steps fitting identity, expressions, poses and focal together")
    learning_rate: float = option(0.02, "Adam's learning rate (decayed to 1% over each stage)")
    cauchy_scale: float = option(0.03, "residual (x inter-ocular distance) where the robust loss "
                                       "starts to flatten")
    identity_prior: float = option(0.01, "weight of the sum of squared identity coefficients")
    expression_sparsity: float = option(0.01, "weight of L1 on each frame's expression weights")
    focal_prior: float = option(0.05, "weight of (log f - log f0)^2, f0 = max(width, height)")
    focal_px: float | None = option(None, "the camera's focal length in pixels when known (it is "
                                          "then held; default: fitted from max(width, height))")
    photometric_steps: int = option(150, "steps of the photometric stage after the landmark stages "
                                         "(0: landmarks only)")
    photometric_weight: float = option(1.0, "weight of the frames' texture disagreement beside the "
                                            "landmark term in that stage")
    photometric_learning_rate: float = option(0.003, "Adam's learning rate of the photometric stage")
    photometric_texels: int = option(128, "size of the UV textures the frames are unwrapped into")
    photometric_image_size: int = option(480, "frames are scaled to at most this many pixels a side "
                                              "for the photometric stage")
    detail_window: int = option(9, "texels of the local mean removed before comparing textures "
                                   "(the light's smooth shading differs between views)")

    def __post_init__(self) -> None:
        if self.rigid_steps < 0 or self.full_steps < 1:
            raise BadInput(f"--rigid-steps {self.rigid_steps} --full-steps {self.full_steps}: "
                           "need rigid steps >= 0 and full steps >= 1")
        for name in ("learning_rate", "cauchy_scale"):
            if not getattr(self, name) > 0:
                raise BadInput(f"--{name.replace('_', '-')} {getattr(self, name)}: must be above 0")
        if self.photometric_steps < 0 or self.photometric_texels < 16 or self.photometric_image_size < 64:
            raise BadInput(f"--photometric-steps {self.photometric_steps} --photometric-texels "
                           f"{self.photometric_texels} --photometric-image-size "
                           f"{self.photometric_image_size}: need steps >= 0, texels >= 16 and "
                           "image size >= 64")
        if self.focal_px is not None and not self.focal_px > 0:
            raise BadInput(f"--focal-px {self.focal_px}: must be above 0 (pixels)")
        for name in ("identity_prior", "expression_sparsity", "focal_prior", "photometric_weight",
                     "photometric_learning_rate", "detail_window"):
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
                 on_step: Callable[[int, int], None] | None = None,
                 images: np.ndarray | None = None) -> IdentityFit:
    """Fit frames whose MediaPipe points (F, 478, 2) pixels were all found (a frame without a
    face has no place here: the caller leaves it out). images: the frames themselves (F, H, W,
    3) uint8 RGB, width x height; with them (and photometric_steps) a last stage also asks the
    frames, unwrapped into UV space through the fitted head, to agree with each other."""
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

    def shaped(rest_shape, identity_incr, identity_decr, expression_shapes) -> torch.Tensor:
        """(F, X, 3) head-space positions of X points or vertices."""
        identity = (torch.einsum("n,nxc->xc", coefficients.clamp(min=0), identity_incr)
                    + torch.einsum("n,nxc->xc", (-coefficients).clamp(min=0), identity_decr))
        return rest_shape + identity + torch.einsum("fk,kxc->fxc", expression, expression_shapes)

    def fitted_points() -> torch.Tensor:
        camera_points = head_to_camera(shaped(rest, incr, decr, shapes), pose_matrix(rotation(), trans))
        return project(camera_points, centred_intrinsics(log_focal.exp(), width, height))[..., :2]

    def landmark_loss() -> torch.Tensor:
        r2 = ((fitted_points() - target) ** 2).sum(-1) / scale**2
        data = (weight * torch.log1p(r2 / cfg.cauchy_scale**2)).sum() / weight.sum().clamp(min=1)
        prior = cfg.identity_prior * (coefficients**2).sum()
        prior = prior + cfg.expression_sparsity * expression.abs().sum(1).mean()
        prior = prior + cfg.focal_prior * (log_focal - np.log(focal0)) ** 2
        return data + prior

    focal = [] if cfg.focal_px else [log_focal]
    stages = [(landmark_loss, [rot, trans, *focal], cfg.rigid_steps, cfg.learning_rate),
              (landmark_loss, [rot, trans, *focal, coefficients, expression], cfg.full_steps,
               cfg.learning_rate)]
    if images is not None and cfg.photometric_steps > 0:
        disagreement = _texture_disagreement(head, basis, images, width, height, cfg, dev)

        def photometric_loss() -> torch.Tensor:
            vertices = shaped(*disagreement.shape_arrays)
            return landmark_loss() + cfg.photometric_weight * disagreement(
                head_to_camera(vertices, pose_matrix(rotation(), trans)), log_focal.exp())

        stages.append((photometric_loss, [rot, trans, coefficients, expression], cfg.photometric_steps,
                       cfg.photometric_learning_rate))
    total = sum(stage[2] for stage in stages)
    done = 0
    for loss_fn, params, steps, learning_rate in stages:
        optimizer = torch.optim.Adam(params, lr=learning_rate)
        # Adam's steps stay near the learning rate; decaying it to 1% lets the fit settle.
        schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda i, n=steps: 0.01 ** (i / n))
        for _ in range(steps):
            optimizer.zero_grad()
            loss_fn().backward()
            optimizer.step()
            schedule.step()
            with torch.no_grad():
                coefficients.copy_(torch.maximum(torch.minimum(coefficients, upper), lower))
                expression.clamp_(0.0, 1.0)
            done += 1
            if on_step:
                on_step(done, total)

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


class _TextureDisagreement:
    """How much the frames, unwrapped into UV space through the head, disagree on the face
    texels two or more of them see: each frame's texture less its local mean (detail_window
    texels: the shading a light casts differs from view to view, the skin's marks do not)
    against the visibility-weighted mean of those details (held fixed within a step),
    Charbonnier-penalised. A wrong shape puts a mark on different texels in different views."""

    def __init__(self, head: HeadAsset, basis: IdentityBasis, images: np.ndarray, width: int,
                 height: int, cfg: IdentityFitConfig, dev: torch.device) -> None:
        import torch.nn.functional as F

        from ..render.unwrap import make_atlas

        factor = min(1.0, cfg.photometric_image_size / max(width, height))
        self.width, self.height = round(width * factor), round(height * factor)
        self.factor = factor
        frames = torch.as_tensor(images, device=dev).permute(0, 3, 1, 2).float() / 255
        self.images = F.interpolate(frames, size=(self.height, self.width), mode="area") \
            if factor < 1 else frames
        self.faces = torch.as_tensor(head.faces, device=dev)
        face_triangle = torch.as_tensor(head.face_region[head.faces].all(1), device=dev)
        self.atlas = make_atlas(torch.as_tensor(head.uv), torch.as_tensor(head.uv_faces),
                                torch.as_tensor(head.faces), cfg.photometric_texels).to(dev).restricted(
            face_triangle)
        self.window = cfg.detail_window
        as_tensor = lambda a: torch.as_tensor(a, dtype=torch.float32, device=dev)  # noqa: E731
        self.shape_arrays = (as_tensor(head.vertices), as_tensor(basis.incr), as_tensor(basis.decr),
                             as_tensor(head.blendshapes))

    def __call__(self, camera_vertices: torch.Tensor, focal: torch.Tensor) -> torch.Tensor:
        from ..adaptation.losses import COLOUR_SCALE, charbonnier, masked_blur
        from ..render.unwrap import unwrap

        k = centred_intrinsics(focal * self.factor, self.width, self.height)
        texture, visible = unwrap(self.images, camera_vertices, k, self.faces, self.atlas)
        weight = visible.to(texture.dtype)
        detail = texture - masked_blur(texture, weight, self.window)
        seen = weight.sum(0)
        shared = (seen >= 2).to(texture.dtype)
        mean = ((detail * weight[:, None]).sum(0) / seen.clamp(min=1)).detach()
        w = weight * shared
        return (charbonnier(detail - mean, COLOUR_SCALE).sum(1) * w).sum() / w.sum().clamp(min=1)


def _texture_disagreement(head: HeadAsset, basis: IdentityBasis, images: np.ndarray, width: int,
                          height: int, cfg: IdentityFitConfig, dev: torch.device) -> _TextureDisagreement:
    if images.shape[1:3] != (height, width):
        raise ValueError(f"images are {images.shape[2]}x{images.shape[1]}, expected {width}x{height}")
    return _TextureDisagreement(head, basis, images, width, height, cfg, dev)


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
