"""textures/<view>/NNNNNN.png: the DAM's view-dependent texture decoded for each frame's
camera (DESIGN.md results layout). `track` writes the footage view (folder textures/footage)
for the DAM trackers; `bake-textures` writes other cameras' views (backend/texture_baking.py).

The view direction is the model's training convention (backend/lab/capture.py
`view_directions`): the unit vector in head space from the neutral head's face centre
(`face_centre_and_height`, the mean of the face region) toward the camera centre.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from .dam.model import DeepAppearanceModel
from .events import EventSink
from .formats.head_file import HeadAsset
from .formats.results_dir import frame_label
from .lab.capture import face_centre_and_height

STAGE = "decoded textures"


def decoded_view_directions(head_to_camera: np.ndarray, head: HeadAsset) -> np.ndarray:
    """(F, 3) float32 unit head-space directions from the face centre toward each camera, for
    invertible poses head_to_camera (F, 4, 4) (head space -> camera, OpenCV axes). The camera
    centre is the inverse pose's translation, so a pose that also scales (a scaled rig in
    Blender) places the camera where it is; for rigid poses this is lab.capture's
    `view_directions`, the convention the DAM was trained with."""
    centre, _ = face_centre_and_height(head)
    camera_centres = np.linalg.inv(np.asarray(head_to_camera, np.float64))[:, :3, 3]
    directions = camera_centres - centre
    return (directions / np.linalg.norm(directions, axis=1, keepdims=True)).astype(np.float32)


@torch.no_grad()
def decode_textures(model: DeepAppearanceModel, latent: np.ndarray,
                    view_dirs: np.ndarray, device: str) -> np.ndarray:
    """(B, S, S, 3) uint8 RGB textures (row 0 = the top of the texture, as the capture's and
    textures/projected) for latent (B, Z) and unit view directions (B, 3); clamped to [0, 1]."""
    model = model.to(device)
    z = torch.as_tensor(np.asarray(latent, np.float32), device=device)
    view = torch.as_tensor(np.asarray(view_dirs, np.float32), device=device)
    texture = model.decode_texture_for_view(z, view).clamp(0, 1)
    return (texture.permute(0, 2, 3, 1) * 255).round().to(torch.uint8).cpu().numpy()


def write_decoded_textures(folder: Path, latent: np.ndarray, head_to_camera: np.ndarray,
                           frames: np.ndarray, model: DeepAppearanceModel, head: HeadAsset,
                           device: str, sink: EventSink, batch: int = 16) -> int:
    """Write folder/NNNNNN.png (NNNNNN = frames[i], the source frame index) for every frame:
    the DAM texture decoded for latent[i] (F, Z) as seen from head_to_camera[i] (F, 4, 4, head
    space -> camera, OpenCV axes), 8-bit RGB, S x S texels of the model. `head` is the model's
    head (its neutral face centre anchors the view directions). Batches of `batch` frames,
    no gradients; progress events of stage "decoded textures". Returns the count written."""
    import cv2

    latent = np.asarray(latent)
    head_to_camera = np.asarray(head_to_camera)
    frames = np.asarray(frames)
    total = len(frames)
    if latent.ndim != 2 or latent.shape[1] != model.config.latent or len(latent) != total:
        raise ValueError(f"latent must be ({total}, {model.config.latent}), got {latent.shape}")
    if head_to_camera.shape != (total, 4, 4):
        raise ValueError(f"head_to_camera must be ({total}, 4, 4), got {head_to_camera.shape}")
    if batch < 1:
        raise ValueError(f"batch must be 1 or more, got {batch}")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    view_dirs = decoded_view_directions(head_to_camera, head)
    sink.progress(STAGE, 0, total)
    for start in range(0, total, batch):
        stop = min(start + batch, total)
        textures = decode_textures(model, latent[start:stop], view_dirs[start:stop], device)
        for index, texture in zip(frames[start:stop], textures, strict=True):
            name = folder / f"{frame_label(int(index))}.png"
            if not cv2.imwrite(str(name), cv2.cvtColor(texture, cv2.COLOR_RGB2BGR)):
                raise OSError(f"cannot write {name}")
        sink.progress(STAGE, stop, total)
    return total
