"""MediaPipe's 478 face-mesh points placed on a head's surface, for fitting its identity.

The 68 iBUG points constrain the eyes, nose, mouth and chin; the shape between them (cheeks,
forehead, brow ridge, jaw line) is what tells one actor from another. MediaPipe's face mesh
places 478 points over the whole face, so the identity fit uses all of them. Each is placed on
the head as the 68 are (backend/heads/landmark_embedding.py): detected on renders of the
neutral head from three views, lifted onto the surface, the per-point median over views kept
as a triangle and barycentric weights (not snapped to a vertex: the points are dense). The
face-oval points follow the silhouette and the iris points the gaze, so neither is fitted
(`mask` False).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..formats.camera import head_to_camera, pose_matrix
from ..formats.head_file import HeadAsset
from ..heads.landmark_embedding import IMAGE_SIZE, albedo_for_rendering, lift_points, view_camera
from ..landmarks.mediapipe_detector import MediaPipeMesh
from ..render.rasterize import project
from ..render.shading import render_textured

NUM_POINTS = 478
VIEW_YAWS_DEG = (0.0, 25.0, -25.0)
IRIS_POINTS = np.arange(468, 478)


def face_oval_points() -> np.ndarray:
    """Indices of MediaPipe's face-oval (silhouette) points."""
    from mediapipe.python.solutions.face_mesh_connections import FACEMESH_FACE_OVAL

    return np.array(sorted({i for edge in FACEMESH_FACE_OVAL for i in edge}), np.int64)


@dataclass
class DenseEmbedding:
    """triangle (P,) int64 into the head's faces; barycentric (P, 3) float64; mask (P,) bool,
    False for points not fitted (silhouette, iris, not found on the renders); P = 478."""

    triangle: np.ndarray
    barycentric: np.ndarray
    mask: np.ndarray

    def points(self, vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
        """(..., P, 3) the embedded points on a mesh of this topology, vertices (..., V, 3)."""
        corners = vertices[..., faces[self.triangle], :]  # (..., P, 3, 3)
        return np.einsum("...pkc,pk->...pc", corners, self.barycentric)

    def basis_at_points(self, deltas: np.ndarray, faces: np.ndarray) -> np.ndarray:
        """(N, P, 3) per-vertex deltas (N, V, 3) interpolated at the points."""
        return self.points(deltas, faces)


def embed_dense_landmarks(head: HeadAsset) -> DenseEmbedding:
    """Place the 478 points on `head` (its neutral shape and albedo, or a flat skin tone)."""
    albedo_t = albedo_for_rendering(head)
    mesh = MediaPipeMesh(video=False)
    try:
        lifted = np.stack([_detect_and_lift(head, albedo_t, mesh, yaw) for yaw in VIEW_YAWS_DEG])
    finally:
        mesh.close()
    if not np.isfinite(lifted[0]).any():
        raise RuntimeError("no face detected on the frontal render of the head: cannot place "
                           "MediaPipe's points on it (is the head facing -Y?)")
    surface = np.nanmedian(lifted, axis=0)  # all-NaN points stay NaN
    mask = np.isfinite(surface).all(1)
    mask[face_oval_points()] = False
    mask[IRIS_POINTS] = False
    triangle, barycentric = closest_surface_points(np.nan_to_num(surface), head.vertices, head.faces)
    return DenseEmbedding(triangle, barycentric, mask)


def _detect_and_lift(head: HeadAsset, albedo_t: torch.Tensor, mesh: MediaPipeMesh,
                     yaw: float) -> np.ndarray:
    """(478, 3) head-space surface points under the points detected on one render (NaN for
    points off the mesh or a render without a face)."""
    rotation, translation, intrinsics = view_camera(head, yaw)
    cam = torch.as_tensor(head_to_camera(head.vertices, pose_matrix(rotation, translation, np.float64)),
                          dtype=torch.float32)[None]
    k = torch.as_tensor(intrinsics, dtype=torch.float32)
    faces = torch.as_tensor(head.faces)
    image, fragments = render_textured(cam, faces, torch.as_tensor(head.uv),
                                       torch.as_tensor(head.uv_faces), albedo_t, k, IMAGE_SIZE, IMAGE_SIZE)
    points = mesh.points((torch.nan_to_num(image[0]).numpy() * 255).astype(np.uint8))
    if points is None:
        return np.full((NUM_POINTS, 3), np.nan)
    return lift_points(points, head.vertices, faces, fragments, cam, intrinsics)


def closest_surface_points(points: np.ndarray, vertices: np.ndarray,
                           faces: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For points (P, 3): the nearest triangle of the mesh (vertices (V, 3), faces (T, 3)) and
    the barycentric weights (P, 3) of the nearest point on it. The point is projected onto
    each triangle's plane and its weights clamped to the triangle (exact inside, close at the
    edges: enough for points lifted from the surface itself)."""
    a, b, c = (vertices[faces[:, i]].astype(np.float64) for i in range(3))
    e0, e1 = b - a, c - a
    d00, d01, d11 = (e0 * e0).sum(1), (e0 * e1).sum(1), (e1 * e1).sum(1)
    denom = np.where(np.abs(d00 * d11 - d01**2) > 1e-20, d00 * d11 - d01**2, 1e-20)
    triangles = np.zeros(len(points), np.int64)
    weights = np.zeros((len(points), 3))
    for i, p in enumerate(np.asarray(points, np.float64)):
        d = p - a
        d20, d21 = (d * e0).sum(1), (d * e1).sum(1)
        v = (d11 * d20 - d01 * d21) / denom
        w = (d00 * d21 - d01 * d20) / denom
        bary = np.clip(np.stack([1 - v - w, v, w], 1), 0, None)
        bary /= np.maximum(bary.sum(1, keepdims=True), 1e-12)
        nearest = bary[:, :1] * a + bary[:, 1:2] * b + bary[:, 2:] * c
        best = int(np.argmin(((nearest - p) ** 2).sum(1)))
        triangles[i], weights[i] = best, bary[best]
    return triangles, weights


def project_embedded(embedding: DenseEmbedding, vertices: np.ndarray, faces: np.ndarray,
                     pose: np.ndarray, intrinsics: np.ndarray) -> np.ndarray:
    """(P, 2) pixels of the embedded points on a mesh (vertices (V, 3)) posed by `pose` (4, 4,
    head -> camera) and seen through `intrinsics` (3, 3)."""
    cam = head_to_camera(embedding.points(vertices, faces), pose)
    return project(torch.as_tensor(cam, dtype=torch.float32)[None],
                   torch.as_tensor(intrinsics, dtype=torch.float32))[0, :, :2].numpy()
