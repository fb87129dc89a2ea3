"""The landmark-fitting tracker (`landmark-fit`): rigid pose and blendshape weights fitted to
detected 2D landmarks.

All frames of a clip are fitted jointly: per-frame head rotation, translation and blendshape
weights (bounded to [0, 1]), one focal length shared over the clip, under a robust (Cauchy)
confidence-weighted reprojection loss with temporal smoothness. It is the baseline the
paper's self-supervised adaptation has to beat. docs/tracker.md has the choices behind it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from ..formats import camera
from ..formats.head_file import HeadAsset
from ..head_space import HEAD_TO_FRONT_CAMERA
from ..landmarks.nme import clip_inter_ocular
from ..landmarks.reprojection_loss import cauchy_reprojection
from ..render.camera import centred_intrinsics, head_to_camera, pose_matrix
from ..render.rasterize import project
from ..staged_adam import minimise_in_stages
from .interface import Tracker, TrackerInput, TrackerOutput
from .rotation import axis_angle_to_matrix


@dataclass
class FitConfig:
    """Weights and schedule of the landmark fit (residuals are in units of inter-ocular distance)."""

    rigid_steps: int = 150
    full_steps: int = 350
    learning_rate: float = 0.02
    cauchy_scale: float = 0.05  # residual (x inter-ocular) where the loss starts to flatten
    smooth_pose: float = 20.0  # second differences of rotation (rad) and translation (dm)
    smooth_weights: float = 5.0  # second differences of blendshape weights
    sparsity: float = 0.01  # L1 on weights: prefer fewer active shapes
    focal_prior: float = 0.05  # (log f - log f0)^2: focal length is weakly observed
    initial_focal_factor: float = 1.0  # f0 = factor * max(width, height) pixels
    min_shape_effect_m: float = 1e-3  # shapes moving no landmark this much are not fitted


@dataclass
class FitResult:
    """rotation (F, 3, 3) and translation (F, 3) map head space to camera space (metres);
    weights (F, K); focal pixels; projected (F, 68, 2) fitted landmarks; residual (F,) mean
    landmark error in pixels over fitted points."""

    rotation: np.ndarray
    translation: np.ndarray
    weights: np.ndarray
    focal: float
    projected: np.ndarray
    residual_px: np.ndarray


def fit_landmarks(
    head: HeadAsset,
    landmarks: np.ndarray,
    confidence: np.ndarray,
    width: int,
    height: int,
    config: FitConfig | None = None,
    device: str = "cpu",
    on_step: Callable[[int, int], None] | None = None,
) -> FitResult:
    """Fit a clip. landmarks (F, 68, 2) pixels; confidence (F, 68) with 0 for missing points
    (a frame without a face has all zeros and is filled by the smoothness terms)."""
    cfg = config or FitConfig()
    dev = torch.device(device)
    num_frames = landmarks.shape[0]
    mask = head.landmark_mask
    lm_vertex = head.landmark_vertex
    shape_effect = np.abs(head.blendshapes[:, lm_vertex[mask]]).max(axis=(1, 2))
    fitted_shapes = np.flatnonzero(shape_effect >= cfg.min_shape_effect_m)

    rest = torch.as_tensor(head.vertices[lm_vertex], device=dev)  # (68, 3)
    basis = torch.as_tensor(head.blendshapes[fitted_shapes][:, lm_vertex], device=dev)  # (S,68,3)
    target = torch.as_tensor(landmarks, dtype=torch.float32, device=dev)
    weight = torch.as_tensor(confidence * mask[None], dtype=torch.float32, device=dev)
    iod = clip_inter_ocular(landmarks, confidence)
    scale = torch.as_tensor(iod, dtype=torch.float32, device=dev)[:, None]

    focal0 = cfg.initial_focal_factor * max(width, height)
    base_rotation = torch.as_tensor(HEAD_TO_FRONT_CAMERA, dtype=torch.float32, device=dev)
    rot = torch.zeros(num_frames, 3, device=dev, requires_grad=True)
    trans = torch.as_tensor(_initial_translation(head, landmarks, confidence, iod, focal0,
                                                 width, height), device=dev).requires_grad_(True)
    shape_w = torch.zeros(num_frames, len(fitted_shapes), device=dev, requires_grad=True)
    log_focal = torch.tensor(float(np.log(focal0)), device=dev, requires_grad=True)

    def pose_and_points() -> tuple[torch.Tensor, torch.Tensor]:
        rotation = axis_angle_to_matrix(rot) @ base_rotation
        points = rest + torch.einsum("fs,svc->fvc", shape_w, basis)
        return rotation, head_to_camera(points, pose_matrix(rotation, trans))

    def loss_fn() -> torch.Tensor:
        _, camera_points = pose_and_points()
        k = centred_intrinsics(log_focal.exp(), width, height)
        data = cauchy_reprojection(project(camera_points, k)[..., :2], target, weight, scale, cfg.cauchy_scale)
        smooth = cfg.smooth_pose * (_second_difference(rot) + _second_difference(trans * 10))
        smooth = smooth + cfg.smooth_weights * _second_difference(shape_w)
        prior = cfg.sparsity * shape_w.abs().mean() * shape_w.shape[1]
        prior = prior + cfg.focal_prior * (log_focal - np.log(focal0)) ** 2
        return data + smooth + prior

    stages = (([rot, trans, log_focal], cfg.rigid_steps), ([rot, trans, shape_w, log_focal], cfg.full_steps))
    minimise_in_stages(loss_fn, stages, cfg.learning_rate, lambda: shape_w.clamp_(0.0, 1.0), on_step)

    with torch.no_grad():
        rotation, camera_points = pose_and_points()
        focal = float(log_focal.exp())
        proj = project(camera_points, centred_intrinsics(log_focal.exp(), width, height))[..., :2]
    weights = np.zeros((num_frames, len(head.blendshape_names)), np.float32)
    weights[:, fitted_shapes] = shape_w.detach().cpu().numpy()
    err = np.linalg.norm(proj.cpu().numpy() - landmarks, axis=-1)
    used = (confidence > 0) & mask[None]
    residual = np.where(used.any(1), (err * used).sum(1) / np.maximum(used.sum(1), 1), np.nan)
    return FitResult(
        rotation=rotation.cpu().numpy(),
        translation=trans.detach().cpu().numpy(),
        weights=weights,
        focal=focal,
        projected=proj.cpu().numpy().astype(np.float32),
        residual_px=residual.astype(np.float32),
    )


def _second_difference(x: torch.Tensor) -> torch.Tensor:
    if x.shape[0] < 3:
        return x.sum() * 0
    return ((x[2:] - 2 * x[1:-1] + x[:-2]) ** 2).sum(-1).mean()


def _initial_translation(head: HeadAsset, landmarks: np.ndarray, confidence: np.ndarray,
                         iod_px: np.ndarray, focal: float, width: int, height: int) -> np.ndarray:
    """(F, 3) translation placing the frontal head under each frame's landmark centroid at the
    depth where its eye-corner distance matches the detected one."""
    eyes = head.vertices[head.landmark_vertex[[36, 45]]]
    iod_m = float(np.linalg.norm(eyes[0] - eyes[1]))
    depth = focal * iod_m / iod_px
    found = confidence.sum(1) > 0
    principal = camera.centred_intrinsics(focal, width, height)[:2, 2].astype(np.float64)
    centroid = np.where(found[:, None],
                        (landmarks * confidence[..., None]).sum(1)
                        / np.maximum(confidence.sum(1), 1e-6)[:, None],
                        principal)
    head_centre = (HEAD_TO_FRONT_CAMERA @ head.vertices[head.landmark_vertex].mean(0))
    x = (centroid[:, 0] - principal[0]) * depth / focal - head_centre[0]
    y = (centroid[:, 1] - principal[1]) * depth / focal - head_centre[1]
    z = depth - head_centre[2]
    return np.stack([x, y, z], axis=1).astype(np.float32)


class LandmarkFitTracker(Tracker):
    """`landmark-fit`: fit_landmarks on the pipeline's detections; the head's vertices posed
    by the fitted weights."""

    config_type = FitConfig

    def track(self, clip: TrackerInput) -> TrackerOutput:
        detections = clip.detections
        if detections is None:
            raise ValueError("the landmark fit needs detections; its registry entry must say so")
        head = clip.head
        fit = fit_landmarks(head, detections.points, detections.confidence, clip.width, clip.height,
                            self.config, clip.device,
                            on_step=lambda done, total: clip.sink.progress("fit", done, total))
        return TrackerOutput(
            vertices=head.posed_vertices(fit.weights).astype(np.float32),
            head_pose=camera.pose_matrix(fit.rotation, fit.translation),
            intrinsics=camera.centred_intrinsics(fit.focal, clip.width, clip.height),
            landmarks=detections,
            landmarks_fit=fit.projected,
            residual_px=fit.residual_px,
            tracked=detections.found.copy(),
            weights=fit.weights,
            weight_names=tuple(head.blendshape_names),
        )
