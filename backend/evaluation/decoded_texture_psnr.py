"""How well a face-model tracker's decoded view-dependent texture explains the frame: the
tracked mesh (vertices, pose, intrinsics of the results) textured with the DAM's texture
decoded for that frame's view, rendered over the footage, against the frame itself on the
face region's pixels (PSNR, 8-bit range). Shading is not applied: the decoded texture holds
the light (render/unlit.py). Trackers without a latent code have no decoded texture.

`render_decoded_texture` is that render alone; the suite report's contact sheets draw it too,
so what the sheets show is what the PSNR scores."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch

from ..dam.model import DeepAppearanceModel
from ..dam.model_folder import load_model
from ..decoded_textures import decoded_view_directions
from ..footage import Footage
from ..formats.head_file import HeadAsset
from ..render.camera import head_to_camera
from ..render.unlit import render_unlit
from .face_coverage import FaceCoverage


class DecodedRender(NamedTuple):
    """One frame's decoded texture rendered through its tracked mesh, on the model's device."""

    image: torch.Tensor  # (H, W, 3) float RGB in [0, 1], zero off the mesh
    mesh: torch.Tensor  # (H, W) bool: pixels the mesh covers
    face: torch.Tensor  # (H, W) bool: pixels of the head's face region (those the PSNR scores)


@torch.no_grad()
def render_decoded_texture(model: DeepAppearanceModel, head: HeadAsset, tracking: dict[str, np.ndarray],
                           row: int, height: int, width: int) -> DecodedRender:
    """Row `row` of a results directory's tracking arrays (tracking.npz layout with `latent`):
    its mesh, posed and projected as tracked, textured with the texture `model` decodes from
    its latent for its view, rendered unlit at height x width (the footage's size)."""
    device = model.texture_mean.device
    faces = torch.as_tensor(head.faces, device=device)
    pose = tracking["head_pose"][row:row + 1]
    z = torch.as_tensor(tracking["latent"][row:row + 1], device=device)
    view = torch.as_tensor(decoded_view_directions(pose, head), device=device)
    texture = model.decode_texture_for_view(z, view).clamp(0, 1)
    cam = head_to_camera(torch.as_tensor(tracking["vertices"][row:row + 1], device=device),
                         torch.as_tensor(pose, device=device))
    rendered, fragments = render_unlit(cam, faces, torch.as_tensor(head.uv, device=device),
                                       torch.as_tensor(head.uv_faces, device=device), texture,
                                       torch.as_tensor(tracking["intrinsics"], device=device), height, width)
    face = fragments.showing(torch.as_tensor(head.face_triangles))
    return DecodedRender(rendered[0], fragments.mask[0], face[0])


def decoded_texture_psnr(tracking: dict[str, np.ndarray], footage: Path, model_dir: Path,
                         head: HeadAsset, device: str = "cpu", step: int = 1,
                         common_with: Sequence[FaceCoverage] = ()) -> dict[str, float | int | None]:
    """{"psnr_db", "frames", "pixels"} over every `step`-th tracked frame of a results
    directory's tracking arrays (tracking.npz layout with `latent`) on its footage; with
    `common_with`, only on face pixels those tracks' faces also cover (face_coverage.py).
    psnr_db is None where no pixel was scored (reports write JSON, which has no NaN)."""
    model, _ = load_model(model_dir, device)
    frames, confidence = tracking["frames"], tracking["confidence"]
    wanted = {int(f): i for i, f in enumerate(frames) if confidence[i] > 0 and i % step == 0}
    squared, pixels = 0.0, 0
    for index, image in Footage(footage).frames(int(frames[0]), int(frames[-1])):
        i = wanted.get(int(index))
        if i is None:
            continue
        render = render_decoded_texture(model, head, tracking, i, *image.shape[:2])
        face = render.face
        for other in common_with:
            face = face & other.mask(int(index), (0, 0, image.shape[1], image.shape[0]), device)
        if not face.any():
            continue
        frame = torch.as_tensor(image, device=device).float() / 255
        difference = (render.image - frame)[face]
        squared += float((difference ** 2).sum())
        pixels += int(face.sum()) * 3
    psnr = 10 * math.log10(1.0 / max(squared / pixels, 1e-12)) if pixels else None
    return {"psnr_db": psnr, "frames": len(wanted), "pixels": pixels // 3}
