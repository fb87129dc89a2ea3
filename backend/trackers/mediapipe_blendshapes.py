"""The `mediapipe-blendshapes` baseline: what today's open-source Blender face-capture add-ons
do. MediaPipe Face Landmarker's 52 ARKit blendshape scores drive the head's shapes, and its
facial transformation matrix is the head pose. It is a benchmark baseline (its model bundle
lives in FACEADAPT_DATA/models/face_landmarker.task), not part of the product.

The matrix maps MediaPipe's canonical face model (centimetres, +Y up, face toward +Z) into an
OpenGL camera (looking down -Z) with a 63 degree vertical field of view. A similarity fitted
once from the head's landmark vertices to the canonical model's matching points puts the head
into canonical space, so: head -> canonical -> OpenGL camera -> OpenCV camera; camera space is
then divided by that similarity's scale, which changes no projection and makes the pose rigid.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..formats.camera import centred_intrinsics, project_points
from ..formats.errors import BadInput
from ..formats.head_file import HeadAsset
from ..formats.protocol import NUM_LANDMARKS
from ..heads.arkit import arkit_channel
from ..landmarks.mediapipe_detector import load_mapping
from ..similarity import umeyama
from .interface import Detections, Tracker, TrackerInput, TrackerOutput

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


def head_to_canonical(head: HeadAsset, canonical_478: np.ndarray) -> np.ndarray:
    """(4, 4) similarity from head space to MediaPipe's canonical space (centimetres)."""
    index, _ = load_mapping()
    mask = head.landmark_mask
    return umeyama(head.vertices[head.landmark_vertex[mask]].astype(np.float64),
                   canonical_478[index[mask]])


def weights_for_head(scores: dict[str, float], names: list[str]) -> np.ndarray:
    """(K,) head weights from ARKit scores; a split shape (browInnerUp_L) takes its channel's."""
    return np.array([scores.get(arkit_channel(n) or n, 0.0) for n in names], np.float32)


class FaceLandmarkerVideo:
    """MediaPipe Face Landmarker in VIDEO mode, run frame by frame over one clip."""

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

    def track(self, frames: Iterable[np.ndarray], fps: float, head: HeadAsset,
              on_frame: Callable[[int], None] | None = None) -> BlendshapeTrack:
        """frames: (H, W, 3) uint8 RGB images of one clip, at least one; on_frame(count done)."""
        import mediapipe as mp

        to_canonical = head_to_canonical(head, self._canonical)
        weights, poses, landmarks, found = [], [], [], []
        width = height = 0
        for i, frame in enumerate(frames):
            height, width = frame.shape[:2]
            weights.append(np.zeros(len(head.blendshape_names), np.float32))
            poses.append(np.eye(4, dtype=np.float32))
            landmarks.append(np.zeros((NUM_LANDMARKS, 2), np.float32))
            found.append(False)
            image = mp.Image(image_format=mp.ImageFormat.SRGB, data=np.ascontiguousarray(frame))
            result = self._landmarker.detect_for_video(image, round(i * 1000 / fps))
            if on_frame:
                on_frame(i + 1)
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
            poses[i][:3] = camera[:3] / scale
            points = np.array([[p.x * width - 0.5, p.y * height - 0.5]
                               for p in result.face_landmarks[0]])
            landmarks[i] = points[self._index]
        if not found:
            raise ValueError("the Face Landmarker was given no frames")
        focal = (height / 2) / math.tan(math.radians(VERTICAL_FOV_DEG) / 2)
        return BlendshapeTrack(np.stack(weights), np.stack(poses), centred_intrinsics(focal, width, height),
                               np.stack(landmarks), np.array(found))

    def close(self) -> None:
        self._landmarker.close()


def track_face_landmarker(frames: Iterable[np.ndarray], fps: float, head: HeadAsset,
                          task_path: Path, canonical_obj: Path,
                          on_frame: Callable[[int], None] | None = None) -> BlendshapeTrack:
    """The Face Landmarker's track of one clip's frames ((H, W, 3) uint8 RGB) on `head`, from
    its model bundle and MediaPipe's canonical face (the registry entry's data files)."""
    landmarker = FaceLandmarkerVideo(task_path, canonical_obj)
    try:
        return landmarker.track(frames, fps, head, on_frame)
    finally:
        landmarker.close()


class MediaPipeBlendshapesTracker(Tracker):
    """`mediapipe-blendshapes`: the Face Landmarker's weights and pose on the head; its own
    478 points (mapped to iBUG-68) are the landmarks it follows."""

    def track(self, clip: TrackerInput) -> TrackerOutput:
        if clip.frames is None:
            raise ValueError("the Face Landmarker baseline needs the frames; its registry entry must say so")
        task_path, canonical_obj = clip.data_files
        head = clip.head
        track = track_face_landmarker(clip.frames, clip.fps, head, task_path, canonical_obj,
                                      lambda done: clip.sink.progress("track", done, clip.frame_count))
        # MediaPipe gives no per-point confidence: every point of a found face counts fully.
        confidence = np.repeat(track.found[:, None], NUM_LANDMARKS, axis=1).astype(np.float32)
        vertices = head.posed_vertices(track.weights).astype(np.float32)
        projected = project_points(vertices[:, head.landmark_vertex], track.head_pose, track.intrinsics)
        error = np.linalg.norm(projected - track.landmarks, axis=-1)[:, head.landmark_mask].mean(1)
        return TrackerOutput(
            vertices=vertices,
            head_pose=track.head_pose,
            intrinsics=track.intrinsics,
            landmarks=Detections(track.landmarks, confidence, track.found),
            landmarks_fit=projected.astype(np.float32),
            residual_px=np.where(track.found, error, np.nan).astype(np.float32),
            tracked=track.found.copy(),
            weights=track.weights,
            weight_names=tuple(head.blendshape_names),
        )
