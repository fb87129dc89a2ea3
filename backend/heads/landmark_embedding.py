"""Placing the iBUG-68 landmarks on a head's surface by detecting them on renders of it.

Procedure (docs/landmarks.md): render the neutral head from a frontal and two turned views
(yaw +-20 degrees); detect the 68 points on each render with the MediaPipe detector; lift
every detected pixel onto the surface through the rasterizer (triangle + barycentrics ->
3D point in head space); take the per-point median over views (the frontal view only for the
jaw contour, whose 2D position depends on the silhouette); snap to the nearest allowed vertex.
The sliding jaw contour (points 0-7 and 9-16) gets `landmark_mask` False: a fixed vertex
cannot follow a silhouette, so trackers do not fit it; the chin (8) is kept.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from ..formats.camera import centred_intrinsics, head_to_camera, pose_matrix
from ..formats.head_file import HeadAsset
from ..head_space import HEAD_TO_FRONT_CAMERA
from ..landmarks.mediapipe_detector import MediaPipeDetector
from ..render.rasterize import barycentrics, interpolate
from ..render.shading import render_textured

JAW_CONTOUR = np.array([i for i in range(17) if i != 8])
VIEW_YAWS_DEG = (0.0, 20.0, -20.0)
IMAGE_SIZE = 512
CAMERA_DISTANCE_M = 0.6
FOCAL_PX = 1400.0
_FLAT_SKIN = np.array([200, 160, 140], np.uint8)


@dataclass
class Embedding:
    landmark_vertex: np.ndarray  # (68,) int64
    landmark_mask: np.ndarray  # (68,) bool
    surface_points: np.ndarray  # (68, 3) head space, before snapping
    views_found: int


def view_camera(head: HeadAsset, yaw_deg: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(rotation (3, 3), translation (3,), intrinsics (3, 3)) of a camera looking at the face."""
    centre = head.vertices[head.face_region].mean(0)
    a = math.radians(yaw_deg)
    yaw = np.array([[math.cos(a), -math.sin(a), 0], [math.sin(a), math.cos(a), 0], [0, 0, 1]])
    rotation = HEAD_TO_FRONT_CAMERA @ yaw
    translation = np.array([0, 0, CAMERA_DISTANCE_M]) - rotation @ centre
    return rotation, translation, centred_intrinsics(FOCAL_PX, IMAGE_SIZE, IMAGE_SIZE)


def embed_landmarks(head: HeadAsset, snap_to: np.ndarray | None = None) -> Embedding:
    """Embed iBUG-68 landmarks on `head` (neutral shape, its albedo or a flat skin tone).

    snap_to: (V,) bool, vertices a landmark may snap to (default: the face region).
    """
    allowed = np.flatnonzero(head.face_region if snap_to is None else snap_to)
    albedo = head.albedo if head.albedo is not None else _FLAT_SKIN[None, None, :]
    albedo_t = torch.as_tensor(albedo).permute(2, 0, 1).float() / 255
    faces = torch.as_tensor(head.faces)
    detector = MediaPipeDetector(video=False)
    lifted = np.full((len(VIEW_YAWS_DEG), 68, 3), np.nan)
    try:
        for view, yaw in enumerate(VIEW_YAWS_DEG):
            rotation, translation, intrinsics = view_camera(head, yaw)
            # float64 keeps the embedding the default head has always had: a float32 pose moves
            # edge pixels of the render enough to change MediaPipe's detections (0.4 mm).
            pose = pose_matrix(rotation, translation, np.float64)
            cam = torch.as_tensor(head_to_camera(head.vertices, pose), dtype=torch.float32)[None]
            image, fragments = render_textured(cam, faces, torch.as_tensor(head.uv),
                                               torch.as_tensor(head.uv_faces), albedo_t,
                                               torch.as_tensor(intrinsics, dtype=torch.float32),
                                               IMAGE_SIZE, IMAGE_SIZE)
            detection = detector.detect((image[0].numpy() * 255).astype(np.uint8))
            if not detection.found:
                continue
            lifted[view] = _lift(detection.points, head, fragments, cam, intrinsics)
    finally:
        detector.close()
    views_found = int(np.isfinite(lifted[:, 0, 0]).sum())
    if not np.isfinite(lifted[0]).all():
        raise RuntimeError("no face detected on the frontal render of the head: cannot embed "
                           "landmarks (is the head facing -Y, with eyes, nose and mouth?)")
    surface = np.nanmedian(lifted, axis=0)
    surface[JAW_CONTOUR] = lifted[0, JAW_CONTOUR]
    dist = np.linalg.norm(head.vertices[allowed][None] - surface[:, None], axis=-1)
    vertex = allowed[dist.argmin(1)]
    mask = np.ones(68, bool)
    mask[JAW_CONTOUR] = False
    return Embedding(vertex.astype(np.int64), mask, surface, views_found)


def _lift(points: np.ndarray, head: HeadAsset, fragments, cam: torch.Tensor,
          intrinsics: np.ndarray) -> np.ndarray:
    """Head-space surface points (68, 3) under 2D pixels (68, 2) of one render (NaN if off-mesh)."""
    from ..render.rasterize import project

    faces = torch.as_tensor(head.faces)
    screen = project(cam, torch.as_tensor(intrinsics, dtype=torch.float32))
    weights = barycentrics(screen, faces, fragments)
    position = interpolate(torch.as_tensor(head.vertices, dtype=torch.float32), faces, fragments,
                           weights)[0].numpy()
    covered = fragments.mask[0].numpy()
    ys, xs = np.nonzero(covered)
    out = np.full((len(points), 3), np.nan)
    for i, (x, y) in enumerate(points):
        # The nearest covered pixel: a contour point may sit just off the silhouette.
        nearest = np.argmin((xs - x) ** 2 + (ys - y) ** 2)
        if (xs[nearest] - x) ** 2 + (ys[nearest] - y) ** 2 <= 25:
            out[i] = position[ys[nearest], xs[nearest]]
    return out
