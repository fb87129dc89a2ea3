"""The suite's reference rows on ground-truth clips: what any tracker must beat, and the best the
face model allows.

- **neutral**: the head at rest (its rest vertices, no expression) posed by the true pose. A
  tracker that recovers no expression at all scores this; every tracker must beat it.
- **dam-oracle**: per frame, the DAM latent z fitted to the true vertices through the frozen
  decoder (Adam on z, all frames in one batch, a fixed iteration count, seeded start), over the
  face region the vertex metric uses: the lowest vertex error the face model allows, whatever
  drives it. Only for clips of the model's own head (same topology hash): the default DAM is
  the default head's, so an ICT clip has no oracle row.
- **landmark-oracle**: per frame, the DAM latent fitted to the true landmarks (the 68 points the
  head places, projected by the true pose and camera) under the DAM's prior: what perfect
  landmarks allow a landmark-driven fit with the pose known.
- **detection-oracle**: the same fit to the detector's landmarks of the footage (MediaPipe, the
  points the trackers get), pose still the truth's: what the detector's landmarks allow even
  with the pose known. Between the two rows lies what the detector costs; between it and a
  tracker, what the tracker's pose and method cost (docs/evaluation.md).

A reference writes the arrays a tracker writes (`tracking.npz`'s frames, vertices, head_pose,
intrinsics, confidence; the oracle also its latent), with the truth's pose and intrinsics, and
is scored by the very function that scores trackers (truth_metrics.truth_errors), so its row
compares with theirs figure by figure. Rotation error is 0 and landmark error measures the
expression alone, since the pose is the truth's.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from ..dam.model import DeepAppearanceModel
from ..dam.model_folder import DEFAULT_MODEL, MODEL_JSON, WEIGHTS, load_model
from ..formats.clip_files import Truth, load_truth
from ..formats.errors import BadInput
from ..formats.head_file import HeadAsset, load_head
from ..landmarks.nme import inter_ocular
from ..render.rasterize import project
from ..trackers.interface import Detections
from .truth_metrics import TruthErrors, truth_errors

NEUTRAL = "neutral"
DAM_ORACLE = "dam-oracle"
LANDMARK_ORACLE = "landmark-oracle"
DETECTION_ORACLE = "detection-oracle"
REFERENCES: dict[str, str] = {
    NEUTRAL: "the head at rest (no expression) posed by the true pose: the error any tracker "
             "must beat",
    DAM_ORACLE: "per frame, the default DAM's latent fitted to the true vertices through the "
                "frozen decoder (true pose): the lowest error the face model allows; clips of "
                "the model's own head only",
    LANDMARK_ORACLE: "per frame, the default DAM's latent fitted to the true 68 landmarks under its "
                     "prior (true pose): what perfect landmarks allow; the model's own head only",
    DETECTION_ORACLE: "the same fitted to the detector's landmarks (MediaPipe, as the trackers get "
                      "them), true pose: what the detector allows with the pose known",
}
# The rows that fit the default DAM, so apply to clips of its own head only.
MODEL_REFERENCES = (DAM_ORACLE, LANDMARK_ORACLE, DETECTION_ORACLE)
# The detector the trackers get their landmarks from by default (track --detector).
ORACLE_DETECTOR = "mediapipe"
# What the oracle reads of the model folder: its cache key hashes these files.
ORACLE_MODEL_FILES = (MODEL_JSON, WEIGHTS)


@dataclass(frozen=True)
class OracleSettings:
    """How the oracle fits z. steps: Adam iterations (cosine-decayed learning rate);
    learning_rate: Adam's initial step; seed: the start z ~ N(0, init_std^2) per frame (near
    the prior's mean); batch: frames fitted together (each frame's z only meets its own frame's
    gradient, and Adam scales each coordinate on its own, so the batch size changes speed, not
    the answer)."""

    steps: int = 300
    learning_rate: float = 0.1
    seed: int = 0
    init_std: float = 0.01
    batch: int = 256

    def as_dict(self) -> dict:
        return asdict(self)


ORACLE = OracleSettings()


def neutral_vertices(head: HeadAsset, frames: int) -> np.ndarray:
    """(frames, V, 3) float32: the rest head's vertices, head space metres, on every frame."""
    return np.broadcast_to(head.vertices.astype(np.float32), (frames, *head.vertices.shape)).copy()


def oracle_applies(model: DeepAppearanceModel, info: dict, head: HeadAsset) -> bool:
    """Whether the model decodes `head`'s mesh: same vertex count and, where model.json records
    one, the same topology hash."""
    recorded = info.get("topology_hash")
    return model.num_vertices == head.num_vertices and (recorded is None
                                                         or recorded == head.topology_hash)


@dataclass(frozen=True)
class LandmarkOracleSettings:
    """How the landmark oracles fit z. The loss per frame: the landmarks' mean distance over
    the frame's true inter-ocular distance (so it weighs the same at any resolution), plus
    prior_weight x the mean square of z (the DAM's N(0, I) prior: 68 points in 2D leave
    directions of z unseen). steps and learning_rate as OracleSettings; every frame starts at
    z = 0, so the fit is deterministic. prior_weight 0.002 is 0.14 per pixel at the coloured
    clip's 68-pixel inter-ocular distance, where this row scores 0.34 mm; a first form of the
    fit, in pixels, scored 0.344 / 0.336 / 0.331 mm at 0.001 / 0.01 / 0.1 per pixel: the row
    does not hang on the weight (docs/evaluation.md)."""

    steps: int = 400
    learning_rate: float = 0.05
    prior_weight: float = 0.002
    batch: int = 256

    def as_dict(self) -> dict:
        return asdict(self)


LANDMARK_ORACLE_SETTINGS = LandmarkOracleSettings()
# Each fitted row's settings (what its cache key holds besides code, model and clip).
REFERENCE_SETTINGS: dict[str, OracleSettings | LandmarkOracleSettings] = {
    DAM_ORACLE: ORACLE, LANDMARK_ORACLE: LANDMARK_ORACLE_SETTINGS, DETECTION_ORACLE: LANDMARK_ORACLE_SETTINGS}


def _fit_codes(model: DeepAppearanceModel, starts: torch.Tensor,
               loss: Callable[[torch.Tensor, slice], torch.Tensor], steps: int, learning_rate: float,
               batch: int) -> tuple[np.ndarray, np.ndarray]:
    """The loop the oracles share: Adam on per-frame latents from `starts` (F, Z), `batch`
    frames at a time, cosine-decayed learning rate, the decoder frozen. loss(z (B, Z), rows)
    is the sum over the batch's frames (rows of the clip) of each frame's own loss, so frames
    never compete for the step size. Returns latents (F, Z) and decoded vertices (F, V, 3),
    float32, metres."""
    device = next(model.parameters()).device
    latents, decoded = [], []
    requires = [p.requires_grad for p in model.parameters()]
    for p in model.parameters():
        p.requires_grad_(False)
    try:
        for first in range(0, len(starts), batch):
            rows = slice(first, min(first + batch, len(starts)))
            z = starts[rows].to(device).requires_grad_(True)
            optimizer = torch.optim.Adam([z], lr=learning_rate)
            schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, steps)
            for _ in range(steps):
                optimizer.zero_grad(set_to_none=True)
                loss(z, rows).backward()
                optimizer.step()
                schedule.step()
            with torch.no_grad():
                latents.append(z.detach().cpu())
                decoded.append(model.decode_vertices(z).cpu())
    finally:
        for p, flag in zip(model.parameters(), requires, strict=True):
            p.requires_grad_(flag)
    return torch.cat(latents).numpy(), torch.cat(decoded).numpy()


def fit_latents(model: DeepAppearanceModel, vertices: np.ndarray, region: np.ndarray,
                settings: OracleSettings = ORACLE) -> tuple[np.ndarray, np.ndarray]:
    """The latent per frame whose decoded vertices come closest to `vertices` over `region`.

    vertices: (F, V, 3) head space metres; region: (V,) bool (the face region the vertex metric
    scores). The loss is the metric itself: the mean Euclidean distance over the region, in
    millimetres. Runs on the model's device. Returns latents (F, Z) float32 and the decoded
    vertices (F, V, 3) float32, metres.
    """
    if vertices.ndim != 3 or vertices.shape[1:] != (model.num_vertices, 3):
        raise BadInput(f"oracle: vertices must be (F, {model.num_vertices}, 3), got {vertices.shape}")
    if region.shape != (model.num_vertices,) or not region.any():
        raise BadInput(f"oracle: the region must be ({model.num_vertices},) bool with a vertex in it")
    device = next(model.parameters()).device
    generator = torch.Generator().manual_seed(settings.seed)
    starts = settings.init_std * torch.randn(len(vertices), model.config.latent, generator=generator)
    mask = torch.as_tensor(region, device=device)
    target = torch.as_tensor(vertices, dtype=torch.float32, device=device)[:, mask]

    def loss(z: torch.Tensor, rows: slice) -> torch.Tensor:
        offset = model.decode_vertices(z)[:, mask] - target[rows]
        return (1000.0 * (offset.square().sum(-1) + 1e-16).sqrt()).mean(1).sum()

    return _fit_codes(model, starts, loss, settings.steps, settings.learning_rate, settings.batch)


def fit_latents_to_landmarks(model: DeepAppearanceModel, landmark_vertex: np.ndarray, points: np.ndarray,
                             weights: np.ndarray, head_pose: np.ndarray, intrinsics: np.ndarray,
                             scale_px: np.ndarray,
                             settings: LandmarkOracleSettings = LANDMARK_ORACLE_SETTINGS,
                             ) -> tuple[np.ndarray, np.ndarray]:
    """The latent per frame whose landmark vertices, posed and projected, land on `points`.

    landmark_vertex (68,) the head's landmark vertices; points (F, 68, 2) pixels; weights
    (F, 68) >= 0 (0: a point left out; a frame with none keeps z = 0); head_pose (F, 4, 4)
    head -> camera; intrinsics (3, 3) or (F, 3, 3) pixels; scale_px (F,) the distance that
    counts as 1 (the true inter-ocular distance). Returns latents (F, Z) and decoded vertices
    (F, V, 3), float32, metres (LandmarkOracleSettings: the loss)."""
    frames = len(points)
    if points.shape != (frames, 68, 2) or weights.shape != (frames, 68) or head_pose.shape != (frames, 4, 4):
        raise BadInput(f"landmark oracle: points (F, 68, 2), weights (F, 68) and poses (F, 4, 4) of one clip "
                       f"needed, got {points.shape}, {weights.shape}, {head_pose.shape}")
    device = next(model.parameters()).device

    def tensor(array: np.ndarray) -> torch.Tensor:
        return torch.as_tensor(np.asarray(array, np.float32), device=device)

    target, weight, pose, scale = tensor(points), tensor(weights), tensor(head_pose), tensor(scale_px)
    k = tensor(intrinsics)
    k = k.expand(frames, 3, 3) if k.dim() == 2 else k
    vertex = torch.as_tensor(landmark_vertex, dtype=torch.int64, device=device)

    def loss(z: torch.Tensor, rows: slice) -> torch.Tensor:
        placed = model.decode_vertices(z)[:, vertex]
        camera = placed @ pose[rows, :3, :3].transpose(1, 2) + pose[rows, None, :3, 3]
        distance = (project(camera, k[rows])[..., :2] - target[rows]).norm(dim=-1) / scale[rows, None]
        fitted = (distance * weight[rows]).sum(1) / weight[rows].sum(1).clamp(min=1e-8)
        return (fitted + settings.prior_weight * z.square().mean(1)).sum()

    starts = torch.zeros(frames, model.config.latent)
    return _fit_codes(model, starts, loss, settings.steps, settings.learning_rate, settings.batch)


def reference_tracking(truth: Truth, vertices: np.ndarray) -> dict[str, np.ndarray]:
    """tracking.npz's arrays for per-frame `vertices` (F, V, 3) head space: the truth's frames,
    pose and intrinsics, every frame tracked."""
    frames = len(truth.frames)
    return {"frames": truth.frames.astype(np.int64), "vertices": vertices.astype(np.float32),
            "head_pose": truth.head_pose.astype(np.float32),
            "intrinsics": truth.intrinsics.astype(np.float32),
            "confidence": np.ones(frames, np.float32)}


@dataclass
class ReferenceResult:
    """A reference row's arrays (tracking.npz layout, plus `latent` (F, Z) for the oracle),
    its scores and the seconds computing it took."""

    tracking: dict[str, np.ndarray]
    errors: TruthErrors
    seconds: float


def reference_result(name: str, truth: Truth, head: HeadAsset, model_dir: Path = DEFAULT_MODEL,
                     device: str = "cpu", settings: OracleSettings = ORACLE,
                     detections: Detections | None = None,
                     landmark_settings: LandmarkOracleSettings = LANDMARK_ORACLE_SETTINGS,
                     ) -> ReferenceResult | None:
    """The reference `name` (REFERENCES) on a clip's truth rendered with `head`, scored like a
    tracker; None for a row that fits the model (MODEL_REFERENCES) on a clip of another head.
    The detection oracle needs the footage's `detections`; its frames without a face are
    untracked (confidence 0), as a tracker's are."""
    if name not in REFERENCES:
        raise BadInput(f"no reference row {name!r}; one of {', '.join(REFERENCES)}")
    if name == DETECTION_ORACLE and detections is None:
        raise BadInput("the detection oracle needs the footage's landmark detections")
    start = time.perf_counter()
    if name == NEUTRAL:
        tracking = reference_tracking(truth, neutral_vertices(head, len(truth.frames)))
    else:
        model, info = load_model(model_dir, device)
        if not oracle_applies(model, info, head):
            return None
        if name == DAM_ORACLE:
            latents, decoded = fit_latents(model, truth.vertices, head.face_region, settings)
            tracking = {**reference_tracking(truth, decoded), "latent": latents}
        else:
            tracking = _landmark_oracle(model, truth, head, detections if name == DETECTION_ORACLE else None,
                                        landmark_settings)
    seconds = time.perf_counter() - start
    return ReferenceResult(tracking, truth_errors(tracking, truth.as_arrays(), head), seconds)


def _landmark_oracle(model: DeepAppearanceModel, truth: Truth, head: HeadAsset, detections: Detections | None,
                     settings: LandmarkOracleSettings) -> dict[str, np.ndarray]:
    """tracking.npz's arrays of the landmark oracle (detections None: the true landmarks) or
    the detection oracle, on the points the head places (landmark_mask)."""
    frames = len(truth.frames)
    if detections is None:
        points = truth.landmarks_2d
        weights = np.broadcast_to(head.landmark_mask, (frames, 68)).astype(np.float32)
        found = np.ones(frames, bool)
    else:
        if detections.points.shape != (frames, 68, 2):
            raise BadInput(f"the detection oracle: {detections.points.shape[0]} frames of detections for a "
                           f"truth of {frames}; detect the clip's whole footage")
        points, found = detections.points, detections.found
        weights = detections.confidence * head.landmark_mask * found[:, None]
    latents, decoded = fit_latents_to_landmarks(model, head.landmark_vertex, points, weights, truth.head_pose,
                                                truth.intrinsics, inter_ocular(truth.landmarks_2d), settings)
    found = found & (weights.sum(1) > 0)
    return {**reference_tracking(truth, decoded), "latent": latents, "confidence": found.astype(np.float32)}


def reference_on_clip(name: str, clip: Path, model_dir: Path = DEFAULT_MODEL, device: str = "cpu",
                      settings: OracleSettings = ORACLE, detect: Callable[[], Detections] | None = None,
                      ) -> ReferenceResult | None:
    """reference_result on a make-benchmark clip folder (its truth.npz and head.npz); the
    detection oracle gets the detections of the clip's footage from `detect()`, called only
    where the row applies."""
    truth, head = load_truth(clip), load_head(Path(clip) / "head.npz")
    detections = None
    if name == DETECTION_ORACLE:
        if detect is None:
            raise BadInput(f"the detection oracle of {clip} needs the clip's footage detected")
        if not oracle_applies(*load_model(model_dir, device), head):
            return None
        detections = detect()
    return reference_result(name, truth, head, model_dir, device, settings, detections)
