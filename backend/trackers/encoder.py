"""The image encoder as a tracker (`--tracker encoder`): detect -> crop -> encode -> decode.

Per frame, from the pipeline's landmarks, a face crop (encoder/crop.py, cut once into a
memory-mapped crop folder: adaptation/clip_crops.py) and those landmarks in crop pixels go
through the model's image encoder (a DAM code z and a crop-relative pose); the frozen DAM
decoder gives the vertices; the pose comes back to the footage camera through the crop camera
(encoder/crop_pose.py). The focal length is not observed by one crop: it is assumed
(`focal_factor` x the footage's longer side, the landmark fit's starting value). ARKit weights
are solved from the decoded vertices onto the head's shapes (arkit_solve.py), so the Blender
side can key its sliders; how far they are from the decoded vertices is reported.
A frame without a confident face is untracked (never invented).
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..adaptation.adapt import Prediction, predict
from ..adaptation.clip_crops import ClipCrops, write_clip_crops
from ..config_parser import option
from ..dam.model_folder import load_model
from ..encoder.crop_pose import pose_from_crop
from ..encoder.encoder_file import load_encoder
from ..formats.camera import centred_intrinsics, project_points
from ..formats.errors import BadInput
from ..lab.capture import face_centre_and_height
from .arkit_solve import solve_arkit_weights
from .face_model import FaceModelTracker
from .interface import Detections, TrackerInput, TrackerOutput


@dataclass(frozen=True)
class EncoderTrackerConfig:
    """The encoder tracker's settings."""

    batch: int = option(32, "frames encoded at once")
    focal_factor: float = option(1.0, "assumed focal length, x the footage's longer side (pixels)")


def clip_crops(clip: TrackerInput, crop_size: int, folder: Path) -> ClipCrops:
    """The clip's crops cut into `folder` (memory-mapped; a temporary folder of the tracker)."""
    if clip.frames is None or clip.detections is None:
        raise ValueError("a face-model tracker needs the frames and detections")
    return write_clip_crops(clip.frames, clip.detections, clip.head.landmark_mask, crop_size, folder,
                            clip.sink)


def face_model_output(clip: TrackerInput, crops: ClipCrops, prediction: Prediction, intrinsics: np.ndarray,
                      metrics: dict[str, float] | None = None) -> TrackerOutput:
    """The per-frame results of an encoder's prediction for the clip: poses back through the
    crop cameras of footage `intrinsics` (3, 3), vertices decoded by the frozen DAM, ARKit
    weights solved from them, fitted landmarks and their residuals."""
    if clip.model_folder is None or clip.detections is None:
        raise ValueError("a face-model tracker needs the model folder and detections")
    device = clip.device
    centre, height = face_centre_and_height(clip.head)
    tracked = crops.tracked.copy()
    pose = np.tile(np.eye(4, dtype=np.float32), (len(crops), 1, 1))
    with torch.no_grad():
        poses = pose_from_crop(torch.as_tensor(prediction.rotation[tracked], device=device),
                               torch.as_tensor(prediction.uv[tracked], device=device),
                               torch.as_tensor(prediction.scale[tracked], device=device),
                               torch.as_tensor(crops.crop_intrinsics(intrinsics, tracked), device=device),
                               crops.size, torch.as_tensor(centre, dtype=torch.float32, device=device), height)
    pose[tracked] = poses.cpu().numpy()
    dam, _ = load_model(clip.model_folder, device)
    with torch.no_grad():
        vertices = np.concatenate([
            dam.decode_vertices(torch.as_tensor(prediction.z[s:s + 256], device=device)).cpu().numpy()
            for s in range(0, len(prediction.z), 256)])
    solve = solve_arkit_weights(clip.head, vertices, tracked)
    fit = project_points(vertices[:, clip.head.landmark_vertex], pose, intrinsics)
    residual = _landmark_residual(fit, clip.detections, clip.head.landmark_mask)
    return TrackerOutput(
        vertices=vertices.astype(np.float32), head_pose=pose, intrinsics=intrinsics.astype(np.float32),
        landmarks=clip.detections, landmarks_fit=fit.astype(np.float32),
        residual_px=np.where(tracked, residual, np.nan).astype(np.float32),
        tracked=tracked, weights=solve.weights, weight_names=tuple(clip.head.blendshape_names),
        latent=prediction.z, metrics={"arkit_solve_vertex_mm": solve.vertex_mm,
                                      "arkit_solve_vertex_mm_p95": solve.vertex_mm_p95, **(metrics or {})})


def check_face_model_settings(tracker: str, batch: int, focal_factor: float, clip: TrackerInput) -> Path:
    """Refuse a face-model tracker's bad settings; returns the clip's model folder."""
    if batch < 1:
        raise BadInput(f"{tracker} tracker batch {batch}: must be at least 1")
    if not (focal_factor > 0 and np.isfinite(focal_factor)):
        raise BadInput(f"{tracker} tracker focal factor {focal_factor}: must be a positive number")
    if clip.model_folder is None:
        raise ValueError(f"the {tracker} tracker needs the model folder")
    return clip.model_folder


class EncoderTracker(FaceModelTracker):
    config_type = EncoderTrackerConfig

    def track(self, clip: TrackerInput) -> TrackerOutput:
        config: EncoderTrackerConfig = self.config
        model_folder = check_face_model_settings("encoder", config.batch, config.focal_factor, clip)
        intrinsics = centred_intrinsics(config.focal_factor * max(clip.width, clip.height),
                                        clip.width, clip.height)
        encoder, _ = load_encoder(model_folder, clip.device)
        with tempfile.TemporaryDirectory(prefix="faceadapt-crops-") as work:
            crops = clip_crops(clip, encoder.config.crop_size, Path(work) / "crops")
            prediction = predict(encoder, crops, clip.device, config.batch, clip.sink)
            return face_model_output(clip, crops, prediction, intrinsics)


def _landmark_residual(fit: np.ndarray, detections: Detections, mask: np.ndarray) -> np.ndarray:
    """(F,) mean pixel distance over the head's usable, confidently detected landmarks."""
    use = (detections.confidence > 0.1) & mask[None]
    distance = np.linalg.norm(fit - detections.points, axis=-1)
    return (distance * use).sum(1) / np.maximum(use.sum(1), 1)
