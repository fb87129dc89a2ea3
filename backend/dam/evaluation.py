"""`evaluate-model`: a face model on held-out expressions seen from unseen views.

- vertex error (mean, 95th percentile, mm) over the head's face region;
- texture PSNR on the visible texels of each view;
- rendered PSNR: the decoded model (decoded vertices, textured with the decoded texture for
  that view) rendered from the unseen view against the lab render, over face-region pixels;
- the same rendered PSNR with a view-independent texture (the decoder given the frontal view):
  the gain measures what view conditioning buys.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch

from ..events import EventSink
from ..formats.errors import BadInput
from ..lab.capture import LabCapture, dome_poses
from ..render.camera import head_to_camera
from ..render.unlit import render_unlit
from .model_folder import load_model
from .training_data import BatchMaker

FRONTAL = (0.0, -1.0, 0.0)  # head space: the face looks toward -Y
EVALUATION_SEED_OFFSET = 1_000_003  # unseen views: another stream than the capture's cameras


def _psnr(mse: float) -> float:
    return 10 * math.log10(1.0 / max(mse, 1e-12))


def render_with_texture(maker: BatchMaker, vertices: torch.Tensor, texture: torch.Tensor,
                        poses: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(images (B, 3, H, W), face-region pixel mask (B, H, W)) of head-space vertices textured
    with `texture` (B, 3, S, S) as final colour (no shading: it is baked in)."""
    lab = maker.lab
    size = lab.config.image_size
    cam = head_to_camera(vertices, poses)
    images, fragments = render_unlit(cam, lab.faces, lab.uv, lab.uv_faces, texture, lab.intrinsics,
                                     size, size)
    return images.permute(0, 3, 1, 2), fragments.showing(torch.as_tensor(maker.capture.head.face_triangles))


@torch.no_grad()
def evaluate_model(model_dir: Path, capture_dir: Path | None, views: int, sink: EventSink,
                   device: str = "cpu") -> dict:
    model, info = load_model(model_dir, device)
    capture = LabCapture.open(capture_dir or Path(info["capture"]))
    if capture.head.topology_hash != info["topology_hash"]:
        raise BadInput(f"the capture's head ({capture.head.topology_hash}) is not the model's "
                       f"({info['topology_hash']})")
    maker = BatchMaker(capture, device)
    held = np.flatnonzero(capture.held_out)
    if len(held) == 0:
        raise BadInput(f"the capture {capture.directory} holds no held-out expressions")
    rng = np.random.default_rng(capture.config.seed + EVALUATION_SEED_OFFSET)
    face = torch.as_tensor(capture.head.face_region, device=device)
    vertex_errors, texture_mse, rendered_mse, fixed_mse = [], [], [], []
    for done, sample_index in enumerate(held):
        poses = dome_poses(capture.head, capture.config, views, rng)
        samples = np.full(views, sample_index)
        batch = maker.make(samples, np.zeros(views, int), poses=poses)
        mean, _ = model.encode(batch.vertices, batch.average_texture)
        vertices = model.decode_vertices(mean)
        vertex_errors.append(((vertices[0] - batch.vertices[0]).norm(dim=-1)[face] * 1000).cpu())
        texture = model.decode_texture_for_view(mean, batch.view_dir).clamp(0, 1)
        visible = batch.visible[:, None].expand_as(texture)
        texture_mse.append(((texture - batch.texture)[visible] ** 2).mean().item())
        frontal = torch.tensor([FRONTAL], device=device).expand(views, -1)
        fixed = model.decode_texture_for_view(mean, frontal).clamp(0, 1)
        for decoded, store in ((texture, rendered_mse), (fixed, fixed_mse)):
            image, mask = render_with_texture(maker, vertices, decoded, batch.poses)
            mask = mask[:, None].expand_as(image)
            store.append(((image - batch.images)[mask] ** 2).mean().item())
        sink.progress("evaluate", done + 1, len(held))
    errors = torch.cat(vertex_errors).numpy()
    rendered = _psnr(float(np.mean(rendered_mse)))
    fixed_view = _psnr(float(np.mean(fixed_mse)))
    report = {
        "model": str(model_dir), "capture": str(capture.directory),
        "held_out_expressions": len(held), "unseen_views_per_expression": views,
        "vertex_error_mm": {"mean": float(errors.mean()), "p95": float(np.percentile(errors, 95))},
        "texture_psnr_db": _psnr(float(np.mean(texture_mse))),
        "rendered_psnr_db": rendered,
        "rendered_psnr_view_independent_db": fixed_view,
        "view_conditioning_gain_db": rendered - fixed_view,
    }
    sink.log(f"vertex error {errors.mean():.3f} mm (p95 {np.percentile(errors, 95):.3f}), "
             f"texture PSNR {report['texture_psnr_db']:.2f} dB, rendered PSNR {rendered:.2f} dB, "
             f"view-independent {fixed_view:.2f} dB")
    return report
