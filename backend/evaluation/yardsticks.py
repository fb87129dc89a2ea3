"""The suite's reference rows on ground-truth clips: what any tracker must beat, and the best the
face model allows.

- **neutral**: the head at rest (its rest vertices, no expression) posed by the true pose. A
  tracker that recovers no expression at all scores this; every tracker must beat it.
- **dam-oracle**: per frame, the DAM latent z fitted to the true vertices through the frozen
  decoder (Adam on z, all frames in one batch, a fixed iteration count, seeded start), over the
  face region the vertex metric uses: the lowest vertex error the face model allows, whatever
  drives it. Only for clips of the model's own head (same topology hash): the default DAM is
  the default head's, so an ICT clip has no oracle row.

A reference writes the arrays a tracker writes (`tracking.npz`'s frames, vertices, head_pose,
intrinsics, confidence; the oracle also its latent), with the truth's pose and intrinsics, and
is scored by the very function that scores trackers (truth_metrics.truth_errors), so its row
compares with theirs figure by figure. Rotation error is 0 and landmark error measures the
expression alone, since the pose is the truth's.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from ..dam.model import DeepAppearanceModel
from ..dam.model_folder import DEFAULT_MODEL, MODEL_JSON, WEIGHTS, load_model
from ..formats.clip_files import Truth, load_truth
from ..formats.errors import BadInput
from ..formats.head_file import HeadAsset, load_head
from .truth_metrics import TruthErrors, truth_errors

NEUTRAL = "neutral"
DAM_ORACLE = "dam-oracle"
REFERENCES: dict[str, str] = {
    NEUTRAL: "the head at rest (no expression) posed by the true pose: the error any tracker "
             "must beat",
    DAM_ORACLE: "per frame, the default DAM's latent fitted to the true vertices through the "
                "frozen decoder (true pose): the lowest error the face model allows; clips of "
                "the model's own head only",
}
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


def fit_latents(model: DeepAppearanceModel, vertices: np.ndarray, region: np.ndarray,
                settings: OracleSettings = ORACLE) -> tuple[np.ndarray, np.ndarray]:
    """The latent per frame whose decoded vertices come closest to `vertices` over `region`.

    vertices: (F, V, 3) head space metres; region: (V,) bool (the face region the vertex metric
    scores). The loss is the metric itself: the mean Euclidean distance over the region, in
    millimetres, summed over frames (so frames do not compete for the step size). The decoder
    stays frozen. Runs on the model's device. Returns latents (F, Z) float32 and the decoded
    vertices (F, V, 3) float32, metres.
    """
    if vertices.ndim != 3 or vertices.shape[1:] != (model.num_vertices, 3):
        raise BadInput(f"oracle: vertices must be (F, {model.num_vertices}, 3), got {vertices.shape}")
    if region.shape != (model.num_vertices,) or not region.any():
        raise BadInput(f"oracle: the region must be ({model.num_vertices},) bool with a vertex in it")
    device = next(model.parameters()).device
    latent_size = model.config.latent
    generator = torch.Generator().manual_seed(settings.seed)
    starts = settings.init_std * torch.randn(len(vertices), latent_size, generator=generator)
    mask = torch.as_tensor(region, device=device)
    latents, decoded = [], []
    requires = [p.requires_grad for p in model.parameters()]
    for p in model.parameters():
        p.requires_grad_(False)
    try:
        for first in range(0, len(vertices), settings.batch):
            target = torch.as_tensor(vertices[first:first + settings.batch], dtype=torch.float32,
                                     device=device)[:, mask]
            z = starts[first:first + settings.batch].to(device).requires_grad_(True)
            optimizer = torch.optim.Adam([z], lr=settings.learning_rate)
            schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, settings.steps)
            for _ in range(settings.steps):
                optimizer.zero_grad(set_to_none=True)
                offset = model.decode_vertices(z)[:, mask] - target
                distance_mm = 1000.0 * (offset.square().sum(-1) + 1e-16).sqrt()
                distance_mm.mean(1).sum().backward()
                optimizer.step()
                schedule.step()
            with torch.no_grad():
                latents.append(z.detach().cpu())
                decoded.append(model.decode_vertices(z).cpu())
    finally:
        for p, flag in zip(model.parameters(), requires, strict=True):
            p.requires_grad_(flag)
    return torch.cat(latents).numpy(), torch.cat(decoded).numpy()


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
                     ) -> ReferenceResult | None:
    """The reference `name` (REFERENCES) on a clip's truth rendered with `head`, scored like a
    tracker; None for the oracle on a clip of another head than the model's."""
    start = time.perf_counter()
    if name == NEUTRAL:
        tracking = reference_tracking(truth, neutral_vertices(head, len(truth.frames)))
    elif name == DAM_ORACLE:
        model, info = load_model(model_dir, device)
        if not oracle_applies(model, info, head):
            return None
        latents, decoded = fit_latents(model, truth.vertices, head.face_region, settings)
        tracking = {**reference_tracking(truth, decoded), "latent": latents}
    else:
        raise BadInput(f"no reference row {name!r}; one of {', '.join(REFERENCES)}")
    seconds = time.perf_counter() - start
    return ReferenceResult(tracking, truth_errors(tracking, truth.as_arrays(), head), seconds)


def reference_on_clip(name: str, clip: Path, model_dir: Path = DEFAULT_MODEL, device: str = "cpu",
                      settings: OracleSettings = ORACLE) -> ReferenceResult | None:
    """reference_result on a make-benchmark clip folder (its truth.npz and head.npz)."""
    return reference_result(name, load_truth(clip), load_head(Path(clip) / "head.npz"), model_dir,
                            device, settings)
