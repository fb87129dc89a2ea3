"""The face-model trackers' stages, cached (stage_cache.py): crop -> encode -> optimise ->
refine.

Each stage's key is the key of the stage before it and what the stage adds:

- crop: the clip's detections key (footage, frame range, fps, detector: detection_cache.py),
  the crop size, the head's landmark mask and the crop code;
- encode: the crop key, the encoder's weights, the device, the batch and the encoder code;
- optimise (`adapted`, `latent-fit`): the encode key, the method and its settings, the DAM's
  weights, the starting focal length, the footage size and the optimisation code;
- refine (`adapted` with `--adapt-refine-passes` and `--adapt-landmark-weight` above 0):
  the optimise key and the refinement's own settings (its passes and per-frame learning rate).

So a re-run that changes only the texture size reuses them all, one that changes only
`--adapt-refine-passes` reuses the adaptation, one that changes another `--adapt-*` setting
reuses the crops and the unadapted encoding, and one with another model re-encodes but keeps
the crops. A clip without a detections key (a tracker called outside
`track`) and a cache that cannot be written build each stage in the tracker's temporary folder.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import numpy as np
import torch

from ..adaptation.adapt import ClipFit, Prediction, predict
from ..adaptation.clip_crops import ClipCrops, write_clip_crops
from ..encoder.encoder_file import ENCODER_WEIGHTS
from ..encoder.network import ImageEncoder
from ..events import EventSink
from ..formats.errors import BadInput
from ..formats.file_digest import file_digest
from ..formats.npz_arrays import read_npz
from ..stage_cache import BACKEND, cached_stage, code_digest, stage_key
from .interface import TrackerInput

CROP_CODE = (BACKEND / "encoder" / "crop.py", BACKEND / "adaptation" / "clip_crops.py")
ENCODE_CODE = (BACKEND / "encoder", BACKEND / "adaptation" / "adapt.py")
OPTIMISE_CODE = (BACKEND / "adaptation", BACKEND / "encoder", BACKEND / "dam", BACKEND / "render",
                 BACKEND / "lab" / "capture.py", BACKEND / "formats" / "head_file.py",
                 BACKEND / "trackers" / "clip_optimisation.py",
                 BACKEND / "trackers" / "adapted.py", BACKEND / "trackers" / "latent_fit.py")
T = TypeVar("T")
PREDICTION = "prediction.npz"
FIT = "fit.json"


def crop_stage(clip: TrackerInput, crop_size: int, work: Path) -> tuple[ClipCrops, str | None]:
    """(the clip's crops, their key); cut unless cached."""
    if clip.frames is None or clip.detections is None:
        raise ValueError("a face-model tracker needs the frames and detections")
    frames, detections = clip.frames, clip.detections
    key = None if clip.clip_key is None else stage_key(
        clip=clip.clip_key, size=crop_size, mask=clip.head.landmark_mask.astype(int).tolist(),
        code=code_digest(*CROP_CODE))

    def build(folder: Path) -> None:
        write_clip_crops(frames, detections, clip.head.landmark_mask, crop_size, folder, clip.sink)

    def read(folder: Path) -> ClipCrops:
        crops = ClipCrops.open(folder)
        if len(crops) != len(frames) or crops.size != crop_size:
            raise BadInput(f"cached crops {folder.name[:12]}: {len(crops)} of {crops.size} px, "
                           f"not {len(frames)} of {crop_size} px")
        return crops

    crops, _ = _stage("crop", key, build, read, work, clip.sink)
    return crops, key


def encode_stage(encoder: ImageEncoder, model_folder: Path, crops: ClipCrops, crops_key: str | None,
                 clip: TrackerInput, batch: int, work: Path) -> tuple[Prediction, str | None]:
    """(the unadapted encoder's prediction on every frame, its key); encoded unless cached."""
    key = None if crops_key is None else stage_key(
        crops=crops_key, encoder=file_digest(model_folder / ENCODER_WEIGHTS), device=clip.device,
        batch=batch, torch=torch.__version__, code=code_digest(*ENCODE_CODE))

    def build(folder: Path) -> None:
        folder.mkdir()
        _save_prediction(folder, predict(encoder, crops, clip.device, batch, clip.sink))

    prediction, _ = _stage("encode", key, build, lambda folder: _read_prediction(folder, len(crops)), work,
                           clip.sink)
    return prediction, key


@dataclass(frozen=True)
class Optimised:
    """An optimisation stage's outcome: the per-frame prediction, what the optimisation found,
    whether both came from the cache, and the stage's key (None when uncached)."""

    prediction: Prediction
    fit: ClipFit
    reused: bool
    key: str | None


def optimise_stage(stage: str, previous_key: str | None, settings: dict, clip: TrackerInput, frame_count: int,
                   optimise: Callable[[], tuple[Prediction, ClipFit]], work: Path) -> Optimised:
    """An optimisation over the clip (`stage`: "optimise" after the encoding, "refine" after
    that), which `settings` describe in full (JSON values) beside the stage before it, run by
    optimise() unless cached."""
    key = None if previous_key is None else stage_key(
        previous=previous_key, settings=settings, size=[clip.width, clip.height], device=clip.device,
        torch=torch.__version__, code=code_digest(*OPTIMISE_CODE))

    def build(folder: Path) -> None:
        prediction, fit = optimise()
        folder.mkdir()
        _save_prediction(folder, prediction)
        (folder / FIT).write_text(json.dumps(_fit_document(fit), allow_nan=False))

    def read(folder: Path) -> tuple[Prediction, ClipFit]:
        return _read_prediction(folder, frame_count), _read_fit(folder / FIT)

    (prediction, fit), reused = _stage(stage, key, build, read, work, clip.sink)
    return Optimised(prediction, fit, reused, key)


def _stage(stage: str, key: str | None, build: Callable[[Path], None], read: Callable[[Path], T],
           work: Path, sink: EventSink) -> tuple[T, bool]:
    return cached_stage(f"face-model/{stage}", key, build, read, work / stage, sink)


def _save_prediction(folder: Path, prediction: Prediction) -> None:
    with open(folder / PREDICTION, "wb") as file:
        np.savez(file, z=prediction.z, rotation=prediction.rotation, uv=prediction.uv, scale=prediction.scale)


def _read_prediction(folder: Path, frame_count: int) -> Prediction:
    arrays = read_npz(folder / PREDICTION, "cached prediction", ("z", "rotation", "uv", "scale"),
                      "it is computed again")
    z, rotation, uv, scale = (arrays[name].astype(np.float32) for name in ("z", "rotation", "uv", "scale"))
    if (z.ndim != 2 or len(z) != frame_count or rotation.shape != (frame_count, 3, 3)
            or uv.shape != (frame_count, 2) or scale.shape != (frame_count,)
            or not all(np.isfinite(a).all() for a in (z, rotation, uv, scale))):
        raise BadInput(f"cached prediction {folder.name[:12]}: shapes or values unfit for "
                       f"{frame_count} frames")
    return Prediction(z, rotation, uv, scale)


def _fit_document(fit: ClipFit) -> dict:
    return {"colour_matrix": fit.colour_matrix.tolist(), "colour_offset": fit.colour_offset.tolist(),
            "focal_px": fit.focal_px, "history": fit.history, "steps": fit.steps, "seconds": fit.seconds,
            "used_texture_term": fit.used_texture_term}


def _read_fit(path: Path) -> ClipFit:
    document = json.loads(path.read_text())
    matrix = np.asarray(document["colour_matrix"], np.float32)
    offset = np.asarray(document["colour_offset"], np.float32)
    if matrix.shape != (3, 3) or offset.shape != (3,) or not document["history"]:
        raise BadInput(f"cached fit {path}: colour transform or history malformed")
    return ClipFit(matrix, offset, float(document["focal_px"]),
                   [{str(k): float(v) for k, v in terms.items()} for terms in document["history"]],
                   int(document["steps"]), float(document["seconds"]), bool(document["used_texture_term"]))
