"""What every tracker of a face model (a model folder: DAM, its head, its image encoder) does
beyond tracking: it tracks the model's own head, records which model it used (so a latent is
never decoded by other weights), and writes the decoded view-dependent texture of each frame
for the footage camera (textures/footage/); and the results of an encoder's prediction, which
they share (`face_model_output`; their cached stages: face_model_stages.py). The pipeline calls
the hooks for registry entries with `needs_model`; it imports nothing of the face model itself,
so the other trackers' code (and the suite's cache of their results) does not depend on it.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch

from ..adaptation.adapt import Prediction
from ..adaptation.clip_crops import ClipCrops
from ..dam.model_folder import load_model, load_model_head, model_record, resolve_model
from ..decoded_textures import write_decoded_textures
from ..encoder.crop_pose import pose_from_crop
from ..encoder.encoder_file import read_encoder_info
from ..events import EventSink
from ..formats.camera import project_points
from ..formats.errors import BadInput
from ..formats.head_file import HeadAsset
from ..formats.results_dir import TrackingArrays
from ..lab.capture import face_centre_and_height
from ..landmarks.nme import clip_inter_ocular
from .arkit_solve import solve_arkit_weights
from .interface import Detections, Tracker, TrackerInput, TrackerOutput
from .temporal_smoothing import smooth_over_time


class FaceModelTracker(Tracker):
    """A tracker of a face model; `open_model` comes first."""

    model_folder: Path | None = None
    model_spec: str = "default"

    def open_model(self, spec: str) -> tuple[Path, HeadAsset]:
        """(model folder, its head) for `--model spec`; BadInput for a model that cannot
        track (no such model, no encoder, a head of another topology)."""
        folder = resolve_model(spec)
        read_encoder_info(folder)
        head = load_model_head(folder)
        self.model_folder, self.model_spec = folder, spec
        return folder, head

    def result_fields(self) -> dict:
        """Top-level fields for result.json: the model (`dam_model`: spec, path, weights digest)."""
        if self.model_folder is None:
            return {}
        return {"dam_model": model_record(self.model_spec, self.model_folder)}

    def write_files(self, folder: Path, tracking: TrackingArrays, head: HeadAsset, texture_size: int,
                    device: str, sink: EventSink) -> dict[str, float]:
        """textures/footage/NNNNNN.png (unless texture_size is 0); returns stage timings."""
        latent = tracking.optional.get("latent")
        if texture_size == 0 or latent is None or self.model_folder is None:
            return {}
        start = time.perf_counter()
        dam, _ = load_model(self.model_folder, device)
        write_decoded_textures(folder / "textures" / "footage", latent, tracking.head_pose,
                               tracking.frames, dam, head, device, sink)
        return {"decoded_textures": time.perf_counter() - start}


def face_model_output(clip: TrackerInput, crops: ClipCrops, prediction: Prediction, intrinsics: np.ndarray,
                      metrics: dict[str, float] | None = None, temporal_sigma: float = 0.0) -> TrackerOutput:
    """The per-frame results of an encoder's prediction for the clip: poses back through the
    crop cameras of footage `intrinsics` (3, 3), codes and poses smoothed over time by a
    Gaussian of `temporal_sigma` frames where the detected face moves slowly (0: not;
    temporal_smoothing.py), vertices decoded by the frozen DAM, ARKit
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
    detections = clip.detections
    latent, pose = smooth_over_time(prediction.z, pose, tracked, temporal_sigma, detections.points,
                                    detections.confidence,
                                    clip_inter_ocular(detections.points, detections.confidence))
    dam, _ = load_model(clip.model_folder, device)
    vertices = np.empty((len(latent), clip.head.num_vertices, 3), np.float32)  # filled by chunk
    with torch.no_grad():
        for s in range(0, len(latent), 256):
            chunk = torch.as_tensor(latent[s:s + 256], device=device)
            vertices[s:s + 256] = dam.decode_vertices(chunk).cpu().numpy()
    solve = solve_arkit_weights(clip.head, vertices, tracked)
    fit = project_points(vertices[:, clip.head.landmark_vertex], pose, intrinsics)
    residual = _landmark_residual(fit, clip.detections, clip.head.landmark_mask)
    return TrackerOutput(
        vertices=vertices, head_pose=pose, intrinsics=intrinsics.astype(np.float32),
        landmarks=clip.detections, landmarks_fit=fit.astype(np.float32),
        residual_px=np.where(tracked, residual, np.nan).astype(np.float32),
        tracked=tracked, weights=solve.weights, weight_names=tuple(clip.head.blendshape_names),
        latent=latent, metrics={"arkit_solve_vertex_mm": solve.vertex_mm,
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


def _landmark_residual(fit: np.ndarray, detections: Detections, mask: np.ndarray) -> np.ndarray:
    """(F,) mean pixel distance over the head's usable, confidently detected landmarks."""
    use = (detections.confidence > 0.1) & mask[None]
    distance = np.linalg.norm(fit - detections.points, axis=-1)
    return (distance * use).sum(1) / np.maximum(use.sum(1), 1)
