"""The image encoder as a tracker (`--tracker encoder`): detect -> crop -> encode -> decode.

Per frame, from the pipeline's landmarks, a face crop (encoder/crop.py) and those landmarks in
crop pixels go through the model's image encoder (a DAM code z and a crop-relative pose); the
frozen DAM decoder gives the vertices; the pose comes back to the footage camera through the crop camera
(encoder/crop_pose.py). The focal length is not observed by one crop: it is assumed
(`focal_factor` x the footage's longer side, the landmark fit's starting value). ARKit weights
are solved from the decoded vertices onto the head's shapes (arkit_solve.py), so the Blender
side can key its sliders; how far they are from the decoded vertices is reported.
A frame without a confident face is untracked (never invented).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..config_parser import option
from ..dam.model_folder import load_model
from ..encoder.crop import crop_frame
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


@dataclass
class Encoded:
    """The encoder's per-frame output for a clip (F frames): z (F, Z); pose (F, 4, 4) head ->
    footage camera; tracked (F,) bool (False: no crop)."""

    z: np.ndarray
    pose: np.ndarray
    tracked: np.ndarray


def encode_clip(clip: TrackerInput, intrinsics: np.ndarray, batch: int) -> Encoded:
    """Crop every frame with a face, encode in batches (progress stage "encode")."""
    if clip.model_folder is None or clip.frames is None or clip.detections is None:
        raise ValueError("the encoder tracker needs the model folder, the frames and detections")
    encoder, _ = load_encoder(clip.model_folder, clip.device)
    size = encoder.config.crop_size
    centre, height = face_centre_and_height(clip.head)
    centre_t = torch.as_tensor(centre, dtype=torch.float32, device=clip.device)
    detections = clip.detections
    frames = clip.frame_count
    z = np.zeros((frames, encoder.config.latent), np.float32)
    pose = np.tile(np.eye(4, dtype=np.float32), (frames, 1, 1))
    tracked = np.zeros(frames, bool)
    # The head's unplaceable points are not given to the encoder, as in training.
    confidence = detections.confidence * clip.head.landmark_mask[None]
    pending: list[tuple[int, np.ndarray, np.ndarray, np.ndarray]] = []

    def flush() -> None:
        if not pending:
            return
        index = [p[0] for p in pending]

        def stacked(field: int) -> torch.Tensor:
            return torch.as_tensor(np.stack([p[field] for p in pending]), device=clip.device)

        crops, points, k = stacked(1), stacked(2), stacked(3)
        with torch.no_grad():
            out = encoder(crops.permute(0, 3, 1, 2).float() / 255, points,
                          torch.as_tensor(confidence[index], dtype=torch.float32, device=clip.device))
            poses = pose_from_crop(out.rotation, out.uv, out.scale, k, size, centre_t, height)
        z[index] = out.z.cpu().numpy()
        pose[index] = poses.cpu().numpy()
        tracked[index] = True
        pending.clear()

    for i, image in enumerate(clip.frames):
        seen = (crop_frame(image, detections.points[i], detections.confidence[i], intrinsics, size)
                if detections.found[i] else None)
        if seen is not None:
            pending.append((i, *seen))
        if len(pending) >= batch:
            flush()
        clip.sink.progress("encode", i + 1, frames)
    flush()
    return Encoded(z, pose, tracked)


class EncoderTracker(FaceModelTracker):
    config_type = EncoderTrackerConfig

    def track(self, clip: TrackerInput) -> TrackerOutput:
        config: EncoderTrackerConfig = self.config
        if config.batch < 1:
            raise BadInput(f"encoder batch {config.batch}: must be at least 1")
        if not (config.focal_factor > 0 and np.isfinite(config.focal_factor)):
            raise BadInput(f"encoder focal factor {config.focal_factor}: must be a positive number")
        if clip.detections is None:
            raise ValueError("the encoder tracker needs detections")
        intrinsics = centred_intrinsics(config.focal_factor * max(clip.width, clip.height),
                                        clip.width, clip.height)
        encoded = encode_clip(clip, intrinsics, config.batch)
        dam, _ = load_model(clip.model_folder, clip.device)
        with torch.no_grad():
            vertices = np.concatenate([
                dam.decode_vertices(torch.as_tensor(encoded.z[s:s + 256], device=clip.device)).cpu().numpy()
                for s in range(0, len(encoded.z), 256)])
        solve = solve_arkit_weights(clip.head, vertices, encoded.tracked)
        fit = project_points(vertices[:, clip.head.landmark_vertex], encoded.pose, intrinsics)
        residual = _landmark_residual(fit, clip.detections, clip.head.landmark_mask)
        return TrackerOutput(
            vertices=vertices.astype(np.float32), head_pose=encoded.pose, intrinsics=intrinsics,
            landmarks=clip.detections, landmarks_fit=fit.astype(np.float32),
            residual_px=np.where(encoded.tracked, residual, np.nan).astype(np.float32),
            tracked=encoded.tracked, weights=solve.weights, weight_names=tuple(clip.head.blendshape_names),
            latent=encoded.z, metrics={"arkit_solve_vertex_mm": solve.vertex_mm,
                                       "arkit_solve_vertex_mm_p95": solve.vertex_mm_p95})


def _landmark_residual(fit: np.ndarray, detections: Detections, mask: np.ndarray) -> np.ndarray:
    """(F,) mean pixel distance over the head's usable, confidently detected landmarks."""
    use = (detections.confidence > 0.1) & mask[None]
    distance = np.linalg.norm(fit - detections.points, axis=-1)
    return (distance * use).sum(1) / np.maximum(use.sum(1), 1)
