"""How well a face-model tracker's decoded view-dependent texture explains the frame: the
tracked mesh (vertices, pose, intrinsics of the results) textured with the DAM's texture
decoded for that frame's view, rendered over the footage, against the frame itself on the
face region's pixels (PSNR, 8-bit range). Shading is not applied: the decoded texture holds
the light (render/unlit.py). Trackers without a latent code have no decoded texture."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch

from ..dam.model_folder import load_model
from ..decoded_textures import decoded_view_directions
from ..footage import Footage
from ..formats.head_file import HeadAsset
from ..render.camera import head_to_camera
from ..render.unlit import render_unlit


@torch.no_grad()
def decoded_texture_psnr(tracking: dict[str, np.ndarray], footage: Path, model_dir: Path,
                         head: HeadAsset, device: str = "cpu", step: int = 1) -> dict[str, float | int]:
    """{"psnr_db", "frames"} over every `step`-th tracked frame of a results directory's
    tracking arrays (tracking.npz layout with `latent`) on its footage."""
    model, _ = load_model(model_dir, device)
    frames, confidence = tracking["frames"], tracking["confidence"]
    wanted = {int(f): i for i, f in enumerate(frames) if confidence[i] > 0 and i % step == 0}
    faces = torch.as_tensor(head.faces, device=device)
    uv = torch.as_tensor(head.uv, device=device)
    uv_faces = torch.as_tensor(head.uv_faces, device=device)
    face_triangles = torch.as_tensor(head.face_region, device=device)[faces].all(1)
    intrinsics = torch.as_tensor(tracking["intrinsics"], device=device)
    views = decoded_view_directions(tracking["head_pose"], head)
    squared, pixels = 0.0, 0
    for index, image in Footage(footage).frames(int(frames[0]), int(frames[-1])):
        i = wanted.get(int(index))
        if i is None:
            continue
        z = torch.as_tensor(tracking["latent"][i:i + 1], device=device)
        texture = model.decode_texture_for_view(z, torch.as_tensor(views[i:i + 1], device=device)).clamp(0, 1)
        cam = head_to_camera(torch.as_tensor(tracking["vertices"][i:i + 1], device=device),
                             torch.as_tensor(tracking["head_pose"][i:i + 1], device=device))
        height, width = image.shape[:2]
        rendered, fragments = render_unlit(cam, faces, uv, uv_faces, texture, intrinsics, height, width)
        mask = fragments.mask[0] & face_triangles[fragments.triangle[0].clamp(min=0)]
        if not mask.any():
            continue
        frame = torch.as_tensor(image, device=device).float() / 255
        difference = (rendered[0] - frame)[mask]
        squared += float((difference ** 2).sum())
        pixels += int(mask.sum()) * 3
    psnr = 10 * math.log10(1.0 / max(squared / pixels, 1e-12)) if pixels else float("nan")
    return {"psnr_db": psnr, "frames": len(wanted)}
