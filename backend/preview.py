"""Preview movie: the footage beside the tracked mesh drawn over it, with landmarks."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch

from .footage import Footage
from .formats.camera import head_to_camera
from .movie_writer import write_movie
from .render.shading import render_textured

OVERLAY_OPACITY = 0.6
DETECTED_COLOUR = (0, 255, 0)
FITTED_COLOUR = (255, 0, 0)


def overlay_frame(image: np.ndarray, vertices_cam: np.ndarray, faces: np.ndarray,
                  intrinsics: np.ndarray, detected: np.ndarray, fitted: np.ndarray) -> np.ndarray:
    """(H, W, 3) uint8: the shaded mesh blended over `image`, detected landmarks green, fitted red.

    vertices_cam (V, 3) camera space metres; detected, fitted (68, 2) pixels.
    """
    import cv2

    height, width = image.shape[:2]
    grey = torch.full((3, 1, 1), 0.8)
    shaded, fragments = render_textured(torch.as_tensor(vertices_cam, dtype=torch.float32)[None],
                                        torch.as_tensor(faces), torch.zeros(1, 2),
                                        torch.zeros(len(faces), 3, dtype=torch.int64), grey,
                                        torch.as_tensor(intrinsics, dtype=torch.float32),
                                        height, width)
    mask = fragments.mask[0].numpy()[..., None]
    mesh = (shaded[0].numpy() * 255).astype(np.float32)
    out = np.where(mask, image * (1 - OVERLAY_OPACITY) + mesh * OVERLAY_OPACITY, image)
    out = np.ascontiguousarray(out.astype(np.uint8))
    for points, colour in ((detected, DETECTED_COLOUR), (fitted, FITTED_COLOUR)):
        for x, y in points:
            cv2.circle(out, (round(x), round(y)), 2, colour, -1, lineType=cv2.LINE_AA)
    return out


def write_preview(footage_path: Path, tracking: dict[str, np.ndarray], faces: np.ndarray,
                  out_path: Path, fps: float) -> Path:
    """H.264 mp4 of footage | overlay for every tracked frame, written atomically."""
    footage = Footage(footage_path, fps=fps)
    frames = tracking["frames"]
    pose = tracking["head_pose"]

    def side_by_side() -> Iterator[np.ndarray]:
        for i, (_, image) in enumerate(footage.frames(int(frames[0]), int(frames[-1]))):
            cam = head_to_camera(tracking["vertices"][i], pose[i])
            right = overlay_frame(image, cam, faces, tracking["intrinsics"],
                                  tracking["landmarks_2d"][i], tracking["landmarks_fit"][i])
            yield np.concatenate([image, right], axis=1)

    return write_movie(side_by_side(), out_path, fps)
