"""Baseline: what today's open-source Blender face-capture add-ons do. MediaPipe Face
Landmarker's 52 ARKit blendshape scores drive the head's shapes, and its facial
transformation matrix is the head pose. It is a benchmark baseline (its model bundle lives in
FACEADAPT_DATA/models/face_landmarker.task), not part of the product.

The matrix maps MediaPipe's canonical face model (centimetres, +Y up, face toward +Z) into an
OpenGL camera (looking down -Z) with a 63 degree vertical field of view. A similarity fitted
once from the head's landmark vertices to the canonical model's matching points puts the head
into canonical space, so: head -> canonical -> OpenGL camera -> OpenCV camera; camera space is
then divided by that similarity's scale, which changes no projection and makes the pose rigid.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..formats.errors import BadInput
from ..formats.head_file import HeadAsset
from ..heads.arkit import arkit_channel
from ..landmarks.mediapipe_detector import load_mapping

VERTICAL_FOV_DEG = 63.0  # MediaPipe face geometry's default perspective camera
OPENGL_TO_OPENCV = np.diag([1.0, -1.0, -1.0, 1.0])


@dataclass
class BlendshapeTrack:
    """weights (F, K) on the head's shapes; head_pose (F, 4, 4) head -> OpenCV camera;
    intrinsics (3, 3); landmarks (F, 68, 2) mapped from MediaPipe's 478; found (F,) bool."""

    weights: np.ndarray
    head_pose: np.ndarray
    intrinsics: np.ndarray
    landmarks: np.ndarray
    found: np.ndarray


def read_obj_vertices(path: Path) -> np.ndarray:
    return np.array([[float(v) for v in line.split()[1:4]] for line in open(path)
                     if line.startswith("v ")])


def umeyama(source: np.ndarray, target: np.ndarray) -> np.ndarray:
    """(4, 4) similarity s R x + t best mapping source (N, 3) onto target (N, 3)."""
    mu_s, mu_t = source.mean(0), target.mean(0)
    a, b = source - mu_s, target - mu_t
    u, sigma, vt = np.linalg.svd(b.T @ a / len(a))
    d = np.diag([1.0, 1.0, np.sign(np.linalg.det(u @ vt))])
    rotation = u @ d @ vt
    scale = np.trace(np.diag(sigma) @ d) / (a**2).sum(1).mean()
    out = np.eye(4)
    out[:3, :3] = scale * rotation
    out[:3, 3] = mu_t - scale * rotation @ mu_s
    return out


def head_to_canonical(head: HeadAsset, canonical_478: np.ndarray) -> np.ndarray:
    """(4, 4) similarity from head space to MediaPipe's canonical space (centimetres)."""
    index, _ = load_mapping()
    mask = head.landmark_mask
    return umeyama(head.vertices[head.landmark_vertex[mask]].astype(np.float64),
                   canonical_478[index[mask]])


def weights_for_head(scores: dict[str, float], names: list[str]) -> np.ndarray:
    """(K,) head weights from ARKit scores; a split shape (browInnerUp_L) takes its channel's."""
    return np.array([scores.get(arkit_channel(n) or n, 0.0) for n in names], np.float32)


class FaceLandmarkerTracker:
    """Runs MediaPipe Face Landmarker (VIDEO mode) frame by frame."""

    def __init__(self, task_path: Path, canonical_obj: Path) -> None:
        if not Path(task_path).is_file():
            raise BadInput(f"MediaPipe Face Landmarker bundle {task_path} not found; the baseline "
                           "needs FACEADAPT_DATA/models/face_landmarker.task")
        from mediapipe.tasks.python import BaseOptions, vision

        options = vision.FaceLandmarkerOptions(
            base_options=BaseOptions(model_asset_path=str(task_path)),
            running_mode=vision.RunningMode.VIDEO, num_faces=1, output_face_blendshapes=True,
            output_facial_transformation_matrixes=True)
        self._landmarker = vision.FaceLandmarker.create_from_options(options)
        self._canonical = read_obj_vertices(canonical_obj)
        self._index, _ = load_mapping()

    def track(self, frames: list[np.ndarray], fps: float, head: HeadAsset) -> BlendshapeTrack:
        """frames: (H, W, 3) uint8 RGB images of one clip."""
        import mediapipe as mp

        height, width = frames[0].shape[:2]
        focal = (height / 2) / math.tan(math.radians(VERTICAL_FOV_DEG) / 2)
        intrinsics = np.array([[focal, 0, (width - 1) / 2], [0, focal, (height - 1) / 2], [0, 0, 1]])
        to_canonical = head_to_canonical(head, self._canonical)
        count = len(frames)
        weights = np.zeros((count, len(head.blendshape_names)), np.float32)
        poses = np.tile(np.eye(4, dtype=np.float32), (count, 1, 1))
        landmarks = np.zeros((count, 68, 2), np.float32)
        found = np.zeros(count, bool)
        for i, frame in enumerate(frames):
            image = mp.Image(image_format=mp.ImageFormat.SRGB, data=np.ascontiguousarray(frame))
            result = self._landmarker.detect_for_video(image, round(i * 1000 / fps))
            if not result.face_landmarks:
                continue
            found[i] = True
            scores = {c.category_name: c.score for c in result.face_blendshapes[0]}
            weights[i] = weights_for_head(scores, head.blendshape_names)
            matrix = np.array(result.facial_transformation_matrixes[0], np.float64)
            camera = OPENGL_TO_OPENCV @ matrix @ to_canonical  # head metres -> camera, scaled
            # Dividing camera space by the similarity's scale leaves every projection unchanged
            # and makes the pose rigid, with the head at its own size.
            scale = np.cbrt(np.linalg.det(camera[:3, :3]))
            poses[i, :3] = camera[:3] / scale
            points = np.array([[p.x * width - 0.5, p.y * height - 0.5]
                               for p in result.face_landmarks[0]])
            landmarks[i] = points[self._index]
        return BlendshapeTrack(weights, poses, intrinsics.astype(np.float32), landmarks, found)

    def close(self) -> None:
        self._landmarker.close()
