"""Training batches from a lab capture: encoder inputs and the per-view targets."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..lab.capture import LabCapture, LabRenderer, face_centre_and_height, view_directions


@dataclass
class Batch:
    vertices: torch.Tensor  # (B, V, 3) head space, metres
    average_texture: torch.Tensor  # (B, 3, S, S) in [0, 1]
    view_dir: torch.Tensor  # (B, 3) unit, head space, face centre -> camera
    texture: torch.Tensor  # (B, 3, S, S) the view's unwrapped image (target)
    visible: torch.Tensor  # (B, S, S) bool
    unseen: torch.Tensor  # (B, S, S) bool: texels of the layout no view of the sample saw (none
    # for a capture without the albedo fill there: nothing to learn them from)
    poses: torch.Tensor  # (B, 4, 4) head -> camera
    images: torch.Tensor  # (B, 3, H, W)


class BatchMaker:
    """Renders (or reads) the views a batch needs; deterministic given the indices."""

    def __init__(self, capture: LabCapture, device: str = "cpu") -> None:
        self.capture = capture
        self.lab = LabRenderer(capture.head, capture.config, device)
        centre, _ = face_centre_and_height(capture.head)
        self.centre = torch.as_tensor(centre, dtype=torch.float32, device=self.lab.device)

    def make(self, samples: np.ndarray, cameras: np.ndarray, poses: np.ndarray | None = None) -> Batch:
        """samples (B,), cameras (B,) index the capture; `poses` (B, 4, 4) overrides them
        (unseen views for evaluation)."""
        device = self.lab.device
        weights = torch.as_tensor(self.capture.weights[samples], device=device)
        pose_array = self.capture.poses[samples, cameras] if poses is None else poses
        pose = torch.as_tensor(np.asarray(pose_array, np.float32), device=device)
        with torch.no_grad():
            vertices = self.lab.vertices(weights)
            images = self._images(samples, cameras, vertices, pose, stored=poses is None)
            texture, visible = self.lab.unwrap(images, vertices, pose)
        average = torch.as_tensor(np.asarray(self.capture.average_texture[samples]), device=device)
        average = average.permute(0, 3, 1, 2).float() / 255
        coverage = torch.as_tensor(np.asarray(self.capture.average_coverage[samples]), device=device)
        unseen = (coverage == 0) & self.lab.atlas.mask & self.capture.fills_unseen
        return Batch(vertices, average, view_directions(pose, self.centre), texture, visible, unseen,
                     pose, images)

    def _images(self, samples: np.ndarray, cameras: np.ndarray, vertices: torch.Tensor,
                poses: torch.Tensor, stored: bool) -> torch.Tensor:
        """Stored images where the capture has them (a Cycles capture), built-in renders else."""
        size = self.capture.config.image_size
        paths = [self.capture.stored_view(int(s), int(c)) if stored else None
                 for s, c in zip(samples, cameras, strict=True)]
        images = torch.empty(len(paths), 3, size, size, device=vertices.device)
        missing = [b for b, path in enumerate(paths) if path is None]
        if missing:
            images[missing] = self.lab.render(vertices[missing], poses[missing])
        for b, path in enumerate(paths):
            if path is not None:
                images[b] = _read_image(path, size).to(images.device)
        return images


def _read_image(path: Path, size: int) -> torch.Tensor:
    import cv2

    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None or image.shape[:2] != (size, size):
        raise ValueError(f"{path}: not a {size}x{size} image")
    return torch.as_tensor(cv2.cvtColor(image, cv2.COLOR_BGR2RGB)).permute(2, 0, 1).float() / 255
