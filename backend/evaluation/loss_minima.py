"""Where the adaptation's losses settle when the pose is known (`python -m backend loss-minima`).

The landmark yardsticks (yardsticks.py) say what landmarks allow with the pose given. This asks
the same of the method's image losses. On a ground-truth clip of the default head, with the true
head pose and camera, the crops the adapted tracker cuts from MediaPipe's landmarks, and a DAM
code per frame started at a known point, only the codes move: the per-frame fit of the
adaptation (adaptation/adapt.py, fit_frames: its loss code, learning rate and colour transform)
with the poses held at the truth and the focal length at the true one, on consecutive frame
pairs every `frame_step` frames (L_T needs pairs). Runs, in this order:

- **appearance, codes held**: the DAM oracle's codes (the latents closest to the true vertices)
  held, only the clip's colour transform fitted: L_A at the best expression the model has;
- **appearance**: L_A alone from the same codes, the colour transform starting where the held
  run left it (so the codes do not move to make up for a colour not yet fitted). Where those
  codes are L_A's minimum they stay; where they leave while L_A falls below the held run's, a
  code further from the truth explains the frames better;
- **texture**: L_T alone from the same codes (no model texture in it: the frames' agreement);
- **method**: the adaptation's weighted losses (L_T, L_L, L_A, the latent prior, smoothness; no
  anchor, as there is no encoder prediction to hold to) from the detection oracle's codes (the
  DAM fitted to MediaPipe's landmarks, true pose), colour as in *appearance*: what the method's
  losses add to the detector when the pose is given.

Each run reports the mean vertex error (face region, head space, mm) of its codes over the
sampled frames at its start and end, and its loss terms (all of them, weighted in the run or
not) over the first and the last tenth of its steps. docs/evaluation.md reads the figures.
"""

from __future__ import annotations

import dataclasses
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch

from ..adaptation.adapt import Prediction, fit_frames
from ..adaptation.clip_crops import ClipCrops, write_clip_crops
from ..adaptation.config import AdaptationConfig
from ..config_parser import option, positional, report_option
from ..dam.model import DeepAppearanceModel
from ..dam.model_folder import DEFAULT_MODEL, load_model
from ..detection_cache import footage_detections
from ..encoder.crop_pose import pose_to_crop
from ..encoder.encoder_file import load_encoder
from ..events import EventSink
from ..footage import Footage
from ..formats.clip_files import Truth, load_truth
from ..formats.errors import BadInput
from ..formats.head_file import HeadAsset, load_head
from ..lab.capture import face_centre_and_height
from ..landmarks.nme import inter_ocular
from ..trackers.interface import ClipFrames, Detections
from .clip_making import FOOTAGE, HEAD, TRUTH
from .truth_metrics import truth_errors
from .yardsticks import (
    ORACLE_DETECTOR,
    fit_latents,
    fit_latents_to_landmarks,
    oracle_applies,
    reference_tracking,
)

HELD = "appearance-held"
APPEARANCE = "appearance"
TEXTURE = "texture"
METHOD = "method"
DAM_START, DETECTION_START = "dam-oracle", "detection-oracle"


class Run(NamedTuple):
    """A run: the loss weights it keeps at the adaptation's defaults (the rest 0), where its
    codes start, whether they move."""

    losses: tuple[str, ...]
    start: str
    free_codes: bool


RUNS: dict[str, Run] = {
    HELD: Run(("appearance",), DAM_START, False),
    APPEARANCE: Run(("appearance",), DAM_START, True),
    TEXTURE: Run(("texture",), DAM_START, True),
    METHOD: Run(("texture", "landmark", "appearance", "prior", "smooth"), DETECTION_START, True),
}


@dataclass(frozen=True)
class LossMinimaConfig:
    clips: Path = positional("a ground-truth clip folder (make-benchmark), or a folder of them (those "
                             "of the default head are used)")
    frame_step: int = option(15, "one pair of consecutive frames every this many frames")
    steps: int = option(200, "optimisation steps of each run")
    json: Path | None = report_option()
    device: str = "cpu"

    def __post_init__(self) -> None:
        if self.frame_step < 3:
            raise BadInput(f"--frame-step {self.frame_step}: at least 3 (the fit draws every two consecutive "
                           "sampled frames as a pair, so sampled pairs must not touch)")
        if self.steps < 1:
            raise BadInput(f"--steps {self.steps}: at least 1")


def clip_folders(path: Path) -> list[Path]:
    """The clip folder `path`, or the clip folders inside it (those holding a truth.npz)."""
    path = Path(path)
    if (path / TRUTH).exists():
        return [path]
    clips = sorted(p for p in path.iterdir() if (p / TRUTH).exists()) if path.is_dir() else []
    if not clips:
        raise BadInput(f"{path}: neither a ground-truth clip (no {TRUTH}) nor a folder of them; "
                       "make clips with `python -m backend make-benchmark`")
    return clips


def sampled_pairs(tracked: np.ndarray, frame_step: int) -> np.ndarray:
    """(2P,) frame indices: t and t + 1 for t = 0, step, 2 step, ... where both have a face,
    firsts then seconds."""
    firsts = np.array([t for t in range(0, len(tracked) - 1, frame_step) if tracked[t] and tracked[t + 1]],
                      np.int64)
    return np.concatenate([firsts, firsts + 1])


def run_config(run: str, steps: int, pairs: int) -> AdaptationConfig:
    """The adaptation's settings of `run`: its kept loss weights at their defaults, the others
    0; every frame of a step given L_A; `steps` steps, each of `pairs` pairs drawn (with
    replacement, as the adaptation draws them) from the `pairs` sampled ones; focal length held."""
    kept = RUNS[run].losses
    defaults = AdaptationConfig()
    weights = {f"{name}_weight": getattr(defaults, f"{name}_weight") if name in kept else 0.0
               for name in ("texture", "landmark", "appearance", "prior", "smooth", "anchor")}
    # _budget: steps = passes x frames / (2 x pairs), and the frames are the 2 x pairs sampled.
    return dataclasses.replace(defaults, passes=float(steps), pairs=pairs, appearance_frames=2 * pairs,
                               fixed_focal=True, **weights)


def _vertex_mm(model: DeepAppearanceModel, z: np.ndarray, truth: Truth, head: HeadAsset) -> float:
    with torch.no_grad():
        codes = torch.as_tensor(z, device=next(model.parameters()).device)
        decoded = model.decode_vertices(codes).cpu().numpy()
    return truth_errors(reference_tracking(truth, decoded), truth.as_arrays(), head).vertex_mm_mean


def _frames_of(truth: Truth, rows: np.ndarray) -> Truth:
    return dataclasses.replace(truth, frames=truth.frames[rows], vertices=truth.vertices[rows],
                               head_pose=truth.head_pose[rows], weights=truth.weights[rows],
                               landmarks_2d=truth.landmarks_2d[rows])


def loss_minima_on_clip(clip: Path, config: LossMinimaConfig, sink: EventSink,
                        detections: Detections | None = None) -> dict:
    """The runs (RUNS) on one clip of the default head; see the module's note. `detections` of
    the whole footage stand in for MediaPipe's where given (tests)."""
    truth, head = load_truth(clip), load_head(clip / HEAD)
    device = config.device
    model, info = load_model(DEFAULT_MODEL, device)
    if not oracle_applies(model, info, head):
        raise BadInput(f"{clip}: not a clip of the default head (the DAM's own); loss-minima needs one")
    encoder, _ = load_encoder(DEFAULT_MODEL, device)
    footage = Footage(clip / FOOTAGE)
    width, height = footage.info.width, footage.info.height
    if (width, height) != (truth.width, truth.height):
        raise BadInput(f"{clip}: the footage is {width}x{height}, the truth {truth.width}x{truth.height}; "
                       "render the clip again (make-benchmark)")
    k = truth.intrinsics.astype(np.float64)
    focal = k[0, 0]
    if not np.allclose(k, [[focal, 0, (width - 1) / 2], [0, focal, (height - 1) / 2], [0, 0, 1]]):
        raise BadInput(f"{clip}: the truth's camera is not a centred pinhole with square pixels, the only "
                       "camera the adaptation models")
    if detections is None:
        detections = footage_detections(clip / FOOTAGE, ORACLE_DETECTOR, device, sink)
    if len(detections.found) != len(truth.frames):
        raise BadInput(f"{clip}: {len(detections.found)} footage frames for a truth of {len(truth.frames)}")
    with tempfile.TemporaryDirectory(prefix="faceadapt-loss-minima-") as work:
        crops = write_clip_crops(ClipFrames(footage, 0, len(truth.frames) - 1), detections, head.landmark_mask,
                                 encoder.config.crop_size, Path(work) / "crops", sink)
        rows = sampled_pairs(crops.tracked, config.frame_step)
        if len(rows) == 0:
            raise BadInput(f"{clip}: no two consecutive frames with a face at --frame-step {config.frame_step}")
        sampled = np.zeros(len(crops), bool)
        sampled[rows] = True
        crops = dataclasses.replace(crops, tracked=sampled)
        starts = _starts(model, truth, head, detections, rows)
        sub_truth = _frames_of(truth, rows)
        start_mm = {name: round(_vertex_mm(model, z, sub_truth, head), 4) for name, z in starts.items()}
        report = {"clip": clip.name, "frames": len(rows), "start_mm": start_mm, "runs": {}}
        colour = None  # the held run's, for the runs after it
        for run, (_, start, free) in RUNS.items():
            initial = _initial(starts[start], rows, truth, crops, head, len(truth.frames), model.config.latent)
            fitted = fit_frames(encoder, model, head, crops, width, height, float(focal),
                                run_config(run, config.steps, len(rows) // 2), initial, device, sink,
                                stage=f"loss-minima {clip.name} {run}", warn_budget=False, free_codes=free,
                                free_poses=False, colour=colour)
            fit = fitted.fit
            if run == HELD:
                colour = (fit.colour_matrix, fit.colour_offset)
            end = _vertex_mm(model, fitted.prediction.z[rows], sub_truth, head)
            report["runs"][run] = {"start": start, "start_mm": start_mm[start], "end_mm": round(end, 4),
                                   "first": _rounded(fit.history[0]), "last": _rounded(fit.history[-1]),
                                   "steps": fit.steps, "seconds": round(fit.seconds, 1)}
            sink.log(f"{clip.name} {run}: {start_mm[start]:.3f} -> {end:.3f} mm "
                     f"({fit.steps} steps, {fit.seconds:.0f} s)")
    return report


def _rounded(terms: dict[str, float]) -> dict[str, float]:
    return {name: round(value, 5) for name, value in terms.items()}


def _starts(model: DeepAppearanceModel, truth: Truth, head: HeadAsset, detections: Detections,
            rows: np.ndarray) -> dict[str, np.ndarray]:
    """The start codes (len(rows), Z) of the sampled frames: the DAM oracle's and the detection
    oracle's (yardsticks.py)."""
    dam, _ = fit_latents(model, truth.vertices[rows], head.face_region)
    weights = detections.confidence[rows] * head.landmark_mask * detections.found[rows, None]
    detected, _ = fit_latents_to_landmarks(model, head.landmark_vertex, detections.points[rows],
                                           weights.astype(np.float32), truth.head_pose[rows], truth.intrinsics,
                                           inter_ocular(truth.landmarks_2d[rows]))
    return {DAM_START: dam, DETECTION_START: detected}


def _initial(codes: np.ndarray, rows: np.ndarray, truth: Truth, crops: ClipCrops, head: HeadAsset, frames: int,
             latent: int) -> Prediction:
    """The per-frame outputs the fit starts from: `codes` on the sampled `rows`, and the true
    head pose in each crop's terms (crop_pose.py); other frames are never drawn."""
    z = np.zeros((frames, latent), np.float32)
    rotation = np.tile(np.eye(3, dtype=np.float32), (frames, 1, 1))
    uv, scale = np.zeros((frames, 2), np.float32), np.zeros(frames, np.float32)
    z[rows] = codes
    centre, face_height = face_centre_and_height(head)
    crop_k = torch.as_tensor(crops.crop_intrinsics(truth.intrinsics.astype(np.float32), rows))
    r, p, s = pose_to_crop(torch.as_tensor(truth.head_pose[rows], dtype=torch.float32), crop_k, crops.size,
                           torch.as_tensor(centre, dtype=torch.float32), face_height)
    rotation[rows], uv[rows], scale[rows] = r.numpy(), p.numpy(), s.numpy()
    return Prediction(z, rotation, uv, scale)


def loss_minima(config: LossMinimaConfig, sink: EventSink) -> dict:
    """The runs on every clip of the default head under config.clips, and their means."""
    clips = clip_folders(config.clips)
    model, info = load_model(DEFAULT_MODEL, config.device)
    usable = [c for c in clips if oracle_applies(model, info, load_head(c / HEAD))]
    if not usable:
        raise BadInput(f"{config.clips}: no clip of the default head (the DAM's own); loss-minima needs one")
    reports = []
    for index, clip in enumerate(usable):
        sink.progress("loss-minima", index, len(usable))
        reports.append(loss_minima_on_clip(clip, config, sink))
    sink.progress("loss-minima", len(usable), len(usable))
    mean = {run: {key: round(float(np.mean([r["runs"][run][key] for r in reports])), 4)
                  for key in ("start_mm", "end_mm")} for run in RUNS}
    skipped = [c.name for c in clips if c not in usable]
    return {"settings": {"frame_step": config.frame_step, "steps": config.steps,
                         "learning_rate": AdaptationConfig().frame_learning_rate, "detector": ORACLE_DETECTOR},
            "clips": reports, "mean": mean, "skipped_other_heads": skipped,
            "runs": {name: {"losses": list(run.losses), "start": run.start, "codes_free": run.free_codes}
                     for name, run in RUNS.items()},
            "note": "vertex errors in mm over the face region of the sampled frames; pose and focal "
                    "length held at the truth's"}

