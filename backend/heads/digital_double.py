"""A studio's digital double, exported from Blender (*Make Model From Double*), made ready to be
a face model's head (`personalize DOUBLE.npz`).

The add-on writes what Blender knows: the mesh triangulated (vertex ids kept), its UV map, its
shape keys as blendshapes, the image of its material as the albedo, and the face region when a
vertex group named "face" marks it. Two things need the backend's renderer and detector:

- the iBUG-68 landmarks, written unplaced (landmark_mask all False), are placed on renders of
  the double (landmark_embedding.py);
- an unmarked face region (all False) is derived from them: the vertices within FACE_MARGIN
  times the landmarks' extent of their centre and no further back than FRONT_MARGIN_M behind
  the rearmost landmark (the jaw contour's ends, near the ears): the face, not the ears or the
  back of the head.
"""

from __future__ import annotations

import warnings
from dataclasses import replace

import numpy as np

from ..formats.errors import BadInput
from ..formats.head_file import HeadAsset
from .arkit import ARKIT_NAMES

FACE_MARGIN = 1.15
FRONT_MARGIN_M = 0.01
HEAD_HEIGHT_M = (0.12, 0.6)  # a head (with or without a neck and shoulders) in metres


def landmarks_unplaced(head: HeadAsset) -> bool:
    return not head.landmark_mask.any()


def front_of_head(vertices: np.ndarray) -> np.ndarray:
    """(V,) bool: a first guess at the face, for placing the landmarks' cameras: the front half
    (face toward -Y) of the upper three quarters of the mesh."""
    low, high = vertices.min(0), vertices.max(0)
    centre = (low + high) / 2
    return (vertices[:, 1] <= centre[1]) & (vertices[:, 2] >= low[2] + 0.25 * (high[2] - low[2]))


def face_region_from_landmarks(vertices: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
    """(V,) bool face region of vertices (V, 3) from the 68 landmark points (68, 3), head space."""
    centre = landmarks.mean(0)
    radius = FACE_MARGIN * np.linalg.norm(landmarks - centre, axis=1).max()
    return ((np.linalg.norm(vertices - centre, axis=1) <= radius)
            & (vertices[:, 1] <= landmarks[:, 1].max() + FRONT_MARGIN_M))


def prepare_double(head: HeadAsset, source: str) -> tuple[HeadAsset, list[str]]:
    """(the double with landmarks placed and a face region, warnings for the report). BadInput
    naming `source` when it cannot make a model: no albedo, not head-sized."""
    from .landmark_embedding import embed_landmarks

    if head.albedo is None:
        raise BadInput(f"digital double {source} has no albedo: give its material an Image Texture "
                       "on the Base Color and export it again")
    height = float(np.ptp(head.vertices[:, 2]))
    if not HEAD_HEIGHT_M[0] <= height <= HEAD_HEIGHT_M[1]:
        raise BadInput(f"digital double {source} is {height:.3f} m tall: a head is "
                       f"{HEAD_HEIGHT_M[0]}-{HEAD_HEIGHT_M[1]} m; check the object's scale and the "
                       "scene's unit scale")
    notes: list[str] = []
    if landmarks_unplaced(head):
        region = head.face_region if head.face_region.any() else front_of_head(head.vertices)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                embedding = embed_landmarks(replace(head, face_region=region))
            except RuntimeError as exc:
                raise BadInput(f"digital double {source}: {exc}") from exc
        notes += [str(w.message) for w in caught if issubclass(w.category, RuntimeWarning)]
        head = replace(head, landmark_vertex=embedding.landmark_vertex,
                       landmark_mask=embedding.landmark_mask)
    if not head.face_region.any():
        head = replace(head, face_region=face_region_from_landmarks(
            head.vertices, head.vertices[head.landmark_vertex]))
    arkit = sum(name in ARKIT_NAMES for name in head.blendshape_names)
    if arkit == 0:
        notes.append(f"none of the double's {len(head.blendshape_names)} shape keys has an ARKit "
                     "name: the model learns them, but tracked ARKit curves and retargeting need "
                     "ARKit-named keys (jawOpen, eyeBlinkLeft, ...)")
    return head, notes
