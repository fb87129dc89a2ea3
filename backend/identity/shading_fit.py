"""The identity refined by shading, after the landmark fit (`--shading-steps`).

MediaPipe's points carry what its face prior lets through (detector_bias.py); the shading of
the face carries more: a brow ridge or a jaw line that is too flat or too deep is lit wrongly.
The chosen frames are rendered through the fitted head (the backend's rasterizer, differentiable
in the vertices through the barycentrics and the normals) with the actor's albedo fused from
those frames and one light for the clip (second-order spherical harmonics of the camera-space
normal per colour channel, as albedo fusion models it), and compared with the frames by a
robust colour error over the face region's pixels. Identity, poses and light move; the landmark
term and the identity prior of the fit stay in the loss; expressions and focal length are held.
The albedo is fused again at the current shape every REFUSE_EVERY steps, so a shape error is not
baked into it. docs/identity.md has the measurements.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import numpy as np
import torch
import torch.nn.functional as F

from ..formats.camera import centred_intrinsics
from ..formats.head_file import HeadAsset
from ..landmarks.reprojection_loss import cauchy_reprojection
from ..render.camera import head_to_camera, pose_matrix
from ..render.rasterize import barycentrics, interpolate, interpolate_corners, project, rasterize
from ..render.shading import vertex_normals
from ..render.texture import sample
from ..trackers.rotation import axis_angle_to_matrix
from .albedo_fusion import fuse_albedo, spherical_harmonics
from .dense_landmarks import DenseEmbedding
from .identity_basis import IdentityBasis, displacement
from .identity_fit import EYE_CORNERS, IdentityFit, IdentityFitConfig

WORKING_SIZE = 384  # the frames' longest side while refining (a phone's 4K frames would be slow)
ALBEDO_SIZE = 256  # texels a side of the working albedo (the head's final one is fused after)
REFUSE_EVERY = 100
FRAMES_PER_STEP = 6
LIGHT_STEPS = 60  # the light alone first, from a uniform white one
COLOUR_SCALE = 0.05  # colour error (sum over RGB, in [0, 1]) where the robust loss flattens
LEARNING_RATES = {"identity": 0.01, "pose": 0.001, "light": 0.01}


def refine_by_shading(head: HeadAsset, basis: IdentityBasis, embedding: DenseEmbedding,
                      fit: IdentityFit, points: np.ndarray, images: np.ndarray,
                      config: IdentityFitConfig, device: str = "cpu",
                      on_step: Callable[[int, int], None] | None = None) -> IdentityFit:
    """`fit` (from `fit_identity` on `points` (F, 478, 2) pixels) refined by shading on
    `images` (F, H, W, 3) uint8 RGB, the frames the points are of; config.shading_steps steps."""
    dev = torch.device(device)
    generator = torch.Generator().manual_seed(0)
    images, points, focal = _working_size(images, points, fit.focal)
    num_frames, height, width = images.shape[:3]
    frames = torch.as_tensor(images, device=dev).float() / 255
    faces = torch.as_tensor(head.faces, device=dev)
    face_triangle = torch.as_tensor(head.face_triangles, device=dev)
    corner_uv = torch.as_tensor(head.uv, dtype=torch.float32, device=dev)[
        torch.as_tensor(head.uv_faces, dtype=torch.int64, device=dev)]
    rest = torch.as_tensor(head.vertices, dtype=torch.float32, device=dev)
    incr = torch.as_tensor(basis.incr, device=dev)
    decr = torch.as_tensor(basis.decr, device=dev)
    lower = torch.as_tensor(basis.lower, dtype=torch.float32, device=dev)
    upper = torch.as_tensor(basis.upper, dtype=torch.float32, device=dev)
    expressions = torch.einsum("fk,kvc->fvc", torch.as_tensor(fit.weights, dtype=torch.float32, device=dev),
                               torch.as_tensor(head.blendshapes, dtype=torch.float32, device=dev))
    intrinsics_np = centred_intrinsics(focal, width, height)
    intrinsics = torch.as_tensor(intrinsics_np, dtype=torch.float32, device=dev)
    target = torch.as_tensor(points, dtype=torch.float32, device=dev)
    point_mask = torch.as_tensor(embedding.mask, dtype=torch.float32, device=dev)
    point_corners = torch.as_tensor(head.faces[embedding.triangle], dtype=torch.int64, device=dev)
    point_weights = torch.as_tensor(embedding.barycentric, dtype=torch.float32, device=dev)
    iod = np.linalg.norm(points[:, EYE_CORNERS[0]] - points[:, EYE_CORNERS[1]], axis=-1)
    scale = torch.as_tensor(np.maximum(iod, 1.0), dtype=torch.float32, device=dev)[:, None]

    coefficients = torch.tensor(fit.coefficients, dtype=torch.float32, device=dev, requires_grad=True)
    base_rotation = torch.as_tensor(fit.rotation, dtype=torch.float32, device=dev)
    turn = torch.zeros(num_frames, 3, device=dev, requires_grad=True)
    translation = torch.tensor(fit.translation, dtype=torch.float32, device=dev, requires_grad=True)
    light = torch.zeros(9, 3, device=dev)
    light[0] = 1.0
    light.requires_grad_(True)

    def camera_vertices(frame: torch.Tensor) -> torch.Tensor:
        rotation = axis_angle_to_matrix(turn[frame]) @ base_rotation[frame]
        return head_to_camera(rest + displacement(coefficients, incr, decr) + expressions[frame],
                              pose_matrix(rotation, translation[frame]))

    def colour_loss(frame: torch.Tensor, cam: torch.Tensor, albedo: torch.Tensor) -> torch.Tensor:
        screen = project(cam, intrinsics)
        fragments = rasterize(screen, faces, height, width)
        weights = barycentrics(screen, faces, fragments)
        normal = F.normalize(interpolate(vertex_normals(cam, faces), faces, fragments, weights), dim=-1,
                             eps=1e-12)
        shaded = sample(albedo, interpolate_corners(corner_uv, fragments, weights)) * (
            spherical_harmonics(normal) @ light)
        mask = fragments.showing(face_triangle)
        error = torch.log1p((shaded - frames[frame]).abs().sum(-1) / COLOUR_SCALE)
        return (error * mask).sum() / mask.sum().clamp(min=1)

    def landmark_loss(frame: torch.Tensor, cam: torch.Tensor) -> torch.Tensor:
        on_face = torch.einsum("fpkc,pk->fpc", cam[:, point_corners], point_weights)
        data = cauchy_reprojection(project(on_face, intrinsics)[..., :2], target[frame], point_mask,
                                   scale[frame], config.cauchy_scale)
        return data + config.identity_prior * (coefficients**2).sum()

    def fused_albedo() -> torch.Tensor:
        with torch.no_grad():
            cam = camera_vertices(torch.arange(num_frames, device=dev))
        head_now = basis.reshaped(head, coefficients.detach().cpu().numpy())
        fused = fuse_albedo(head_now, images, cam.cpu().numpy(), intrinsics_np, ALBEDO_SIZE, device)
        return torch.as_tensor(fused.albedo, device=dev).permute(2, 0, 1).float() / 255

    albedo = fused_albedo()
    light_optimizer = torch.optim.Adam([light], lr=0.05)
    for _ in range(LIGHT_STEPS):
        frame = torch.randperm(num_frames, generator=generator)[:FRAMES_PER_STEP].to(dev)
        with torch.no_grad():
            cam = camera_vertices(frame)
        light_optimizer.zero_grad()
        colour_loss(frame, cam, albedo).backward()
        light_optimizer.step()

    optimizer = torch.optim.Adam([
        {"params": [coefficients], "lr": LEARNING_RATES["identity"]},
        {"params": [turn, translation], "lr": LEARNING_RATES["pose"]},
        {"params": [light], "lr": LEARNING_RATES["light"]}])
    for step in range(config.shading_steps):
        frame = torch.randperm(num_frames, generator=generator)[:FRAMES_PER_STEP].to(dev)
        cam = camera_vertices(frame)
        loss = config.shading_weight * colour_loss(frame, cam, albedo) + landmark_loss(frame, cam)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        with torch.no_grad():
            coefficients.copy_(torch.maximum(torch.minimum(coefficients, upper), lower))
        if (step + 1) % REFUSE_EVERY == 0 and step + 1 < config.shading_steps:
            albedo = fused_albedo()
        if on_step:
            on_step(step + 1, config.shading_steps)

    with torch.no_grad():
        frame = torch.arange(num_frames, device=dev)
        rotation = axis_angle_to_matrix(turn) @ base_rotation
        cam = camera_vertices(frame)
        on_face = torch.einsum("fpkc,pk->fpc", cam[:, point_corners], point_weights)
        projected = project(on_face, intrinsics)[..., :2].cpu().numpy()
    # In the footage's pixels, as fit_identity reports it (the frames may have been scaled down).
    error = np.linalg.norm(projected - points, axis=-1)[:, embedding.mask] * (fit.focal / focal)
    return replace(fit, coefficients=coefficients.detach().cpu().numpy().astype(np.float64),
                   rotation=rotation.cpu().numpy(), translation=translation.detach().cpu().numpy(),
                   residual_px=error.mean(1).astype(np.float32))


def _working_size(images: np.ndarray, points: np.ndarray, focal: float) -> tuple[np.ndarray, np.ndarray, float]:
    """The frames scaled down to WORKING_SIZE on their longest side (never up), with the points
    (pixel centres at integers) and the focal length (pixels) scaled alike."""
    import cv2

    height, width = images.shape[1:3]
    factor = min(1.0, WORKING_SIZE / max(height, width))
    if factor == 1.0:
        return images, points, focal
    size = (round(width * factor), round(height * factor))
    scaled = np.stack([cv2.resize(image, size, interpolation=cv2.INTER_AREA) for image in images])
    return scaled, ((points + 0.5) * factor - 0.5).astype(np.float32), focal * factor

