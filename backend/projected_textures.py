"""textures/projected/NNNNNN.png: each frame of the footage unwrapped into the head's UV space
through its tracked mesh, with alpha = visibility (DESIGN.md results layout)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from .events import EventSink
from .footage import Footage
from .formats import results_dir
from .formats.camera import head_to_camera
from .formats.head_file import HeadAsset
from .render.unwrap import make_atlas, unwrap


def write_projected_textures(directory: Path, footage: Footage, tracking: dict[str, np.ndarray],
                             head: HeadAsset, size: int, device: str, sink: EventSink) -> int:
    """Write one RGBA PNG per frame into directory/textures/projected; returns the count.
    Frames without a face (confidence 0) get alpha 0 everywhere.

    tracking: the tracking.npz arrays (frames, vertices, head_pose, intrinsics, confidence).
    """
    import cv2

    out = directory / results_dir.TEXTURES_DIR / results_dir.PROJECTED_TEXTURES
    out.mkdir(parents=True, exist_ok=True)
    dev = torch.device(device)
    faces = torch.as_tensor(head.faces, device=dev)
    atlas = make_atlas(torch.as_tensor(head.uv), torch.as_tensor(head.uv_faces),
                       torch.as_tensor(head.faces), size).to(dev)
    intrinsics = torch.as_tensor(tracking["intrinsics"], dtype=torch.float32, device=dev)
    frames = tracking["frames"]
    total = len(frames)
    for i, (index, image) in enumerate(footage.frames(int(frames[0]), int(frames[-1]))):
        camera = head_to_camera(tracking["vertices"][i], tracking["head_pose"][i])
        picture = torch.as_tensor(image, device=dev).permute(2, 0, 1).float() / 255
        with torch.no_grad():
            texture, visible = unwrap(picture, torch.as_tensor(camera, device=dev)[None],
                                      intrinsics, faces, atlas)
        # A frame without a face holds a neighbour's mesh: nothing in it was observed.
        seen = visible.float() * float(tracking["confidence"][i] > 0)
        rgba = torch.cat([texture[0] * seen, seen], 0).permute(1, 2, 0).cpu().numpy()
        rgba = (rgba * 255).round().astype(np.uint8)
        name = out / f"{results_dir.frame_label(int(index))}.png"
        if not cv2.imwrite(str(name), cv2.cvtColor(rgba, cv2.COLOR_RGBA2BGRA)):
            raise OSError(f"cannot write {name}")
        sink.progress("textures", i + 1, total)
    return total
