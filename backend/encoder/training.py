"""`train-encoder`: the image encoder learned from lab renders of the model's head.

L_E = code_weight * L_z + pose_weight * L_h + view_weight * L_view + vertex_weight * L_v:
- L_z: squared error of the predicted DAM code against the DAM encoder's code of the sample,
  per dimension in units of the training codes' spread;
- L_h: the pose: squared Frobenius distance of the crop-relative rotations, plus the L1 error
  of the crop position (u, v) and of the log scale (crop_pose.py);
- L_view: every batch holds two views of each expression; their codes must agree;
- L_v: the predicted code decoded by the frozen DAM decoder against the true vertices
  (normalised as the DAM normalises them): what tracking is judged by.
Training runs in two phases: first (`landmark_steps`) the landmark branch and the head alone,
on large batches of landmarks without images (the image features are zero: cheap, and the
branch that learns the expression fastest gets the most samples; network.py), then
(`steps`) everything on images; the image branch starts silent (network.py), so it adds to the
fitted landmark branch instead of disturbing it.
Every sample is a lab render (lab_views.py) of an expression drawn as the lab capture draws
them (seeded; held-out expressions from another seed), under fresh augmentation
(augmentation.py).
Checkpoints every `checkpoint_every` steps in the work folder; `--resume` continues there,
bit-for-bit, in another session. `--budget` stops early after that many seconds of training.
`--init` starts from another model's encoder (a warm start: a personal model's from the default
one's), its code normalisation included: a DAM warm-started from that model keeps its code
space close to the other's, so the starting encoder already regresses nearly the right codes.
"""

from __future__ import annotations

import hashlib
import json
import math
import platform
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from ..config_parser import command_flags, option
from ..dam.checkpoint import CHECKPOINT, load_checkpoint, save_checkpoint
from ..dam.model import DeepAppearanceModel
from ..dam.model_folder import load_model, load_model_head, model_id
from ..events import EventSink
from ..formats.atomic import atomic_file
from ..formats.camera import project_points
from ..formats.errors import BadInput
from ..formats.head_file import HeadAsset
from ..lab.capture import LabRenderer, face_centre_and_height
from ..training_history import loss_curve, mean_losses
from .augmentation import Augmentation, augment, contact_sheet, detected_landmarks
from .code_bias_calibration import calibrate_code_bias
from .crop_pose import pose_to_crop
from .encoder_file import load_encoder, save_encoder
from .lab_views import VIEWS_FORMAT, LabViews, encoder_expressions, lab_renderer, make_views
from .linear_landmark_code import fit_linear_landmark_code, landmark_samples
from .network import EncoderArchitecture, EncoderOutput, ImageEncoder

EVALUATION_SEED = 7_000_001  # held-out views: another stream than the training views'
LINEAR_FIT_SEED = 7_000_002  # the landmark errors of the linear code's closed-form fit
CALIBRATION_SEED = 7_000_003  # the views and augmentation of the code's calibration
# Under --budget the landmark phase ends early once it has used this share of the budget: on a
# large head (a digital double) or a busy machine it could otherwise spend all of it and leave
# the image phase, the one that teaches the encoder to read footage, without a step. 60%: the
# double's landmark phase takes about 55% of personalize's encoder budget on a quiet machine.
LANDMARK_BUDGET_SHARE = 0.6


@dataclass(frozen=True)
class EncoderTraining:
    """How the encoder is trained (encoder.json "training")."""

    steps: int = option(6000, "training steps on images")
    landmark_steps: int = option(3000, "steps fitting the landmark branch and the head alone first, on "
                                       "image-free batches (cheap: no render, no backbone)")
    landmark_batch_size: int = option(256, "views per step of the landmark phase")
    budget: float | None = option(None, "stop after this many seconds of training (resumable)")
    batch_size: int = option(32, "images per step (two views of each expression)")
    learning_rate: float = option(1e-3, "Adam's peak learning rate (cosine decay over --steps)")
    code_weight: float = option(1.0, "weight of the code loss L_z")
    pose_weight: float = option(1.0, "weight of the pose loss L_h")
    view_weight: float = option(0.1, "weight of the loss of code disagreement between views L_view")
    vertex_weight: float = option(1.0, "weight of the decoded-vertex loss L_v")
    expressions: int = option(2400, "training expressions (each rendered --views times)")
    views: int = option(3, "lab renders per training expression")
    evaluation_expressions: int = 100
    evaluation_views: int = 2
    seed: int = option(0, "seed of the initialisation, the renders and the sampling")
    checkpoint_every: int = option(200, "steps between checkpoints (a resumed run continues there)")

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass
class Targets:
    """A batch of views, what the encoder is given and what it should give: crops (B, 3, S, S)
    in [0, 1] (None in the landmark phase); landmarks (B, 68, 2) crop pixels as a detector
    gives them, with confidence (B, 68); codes (B, Z); rotation (B, 3, 3), uv (B, 2), scale
    (B,) crop-relative; vertices (B, V, 3) metres."""

    crops: torch.Tensor | None
    landmarks: torch.Tensor
    confidence: torch.Tensor
    codes: torch.Tensor
    rotation: torch.Tensor
    uv: torch.Tensor
    scale: torch.Tensor
    vertices: torch.Tensor


class ViewBatches:
    """Batches of augmented views with their targets."""

    def __init__(self, views: LabViews, head: HeadAsset, lab: LabRenderer, device: str) -> None:
        self.views, self.lab, self.device = views, lab, device
        centre, self.face_height = face_centre_and_height(head)
        self.centre = torch.as_tensor(centre, dtype=torch.float32)
        self.landmark_vertex = torch.as_tensor(head.landmark_vertex)
        self.landmark_mask = head.landmark_mask.astype(np.float32)
        self.size = int(views.info["crop_size"])
        self.per_expression = int(views.info["views_per_expression"])

    def make(self, indices: np.ndarray, rng: np.random.Generator | None,
             augmentation: Augmentation | None, images: bool = True) -> Targets:
        """Views `indices`; augmented with `rng` unless augmentation is None (then the
        landmarks are exact); without `images`, crops is None (the landmark phase)."""
        v = self.views
        crops = None
        if images:
            pixels = np.stack([augment(v.crops[i], v.masks[i], rng, augmentation)
                               if augmentation is not None and rng is not None else np.asarray(v.crops[i])
                               for i in indices])
            crops = (torch.as_tensor(pixels).permute(0, 3, 1, 2).float() / 255).to(self.device)
        expressions = v.expression[indices]
        poses = torch.as_tensor(v.poses[indices])
        intrinsics = torch.as_tensor(v.intrinsics[indices])
        rotation, uv, scale = pose_to_crop(poses, intrinsics, self.size, self.centre, self.face_height)
        with torch.no_grad():
            vertices = self.lab.vertices(torch.as_tensor(v.weights[expressions]))
        landmarks = project_points(vertices[:, self.landmark_vertex].numpy(), poses.numpy(),
                                   intrinsics.numpy())
        confidence = np.ones(landmarks.shape[:2], np.float32)
        if augmentation is not None and rng is not None:
            # What the detector found on the render, where it found the face; the truth with a
            # detector's typical error where it did not.
            found = v.detected_found[indices]
            landmarks = np.where(found[:, None, None], v.detected[indices], landmarks)
            face_px = self.face_height / poses[:, 2, 3].numpy() * intrinsics[:, 0, 0].numpy()
            error = np.where(found, augmentation.detected_landmark_error, augmentation.landmark_error)
            landmarks, confidence = detected_landmarks(landmarks, error * face_px, rng, augmentation)
        confidence = confidence * self.landmark_mask
        to = self.device
        return Targets(crops, torch.as_tensor(landmarks, dtype=torch.float32).to(to),
                       torch.as_tensor(confidence).to(to), torch.as_tensor(v.codes[expressions]).to(to),
                       rotation.to(to), uv.to(to), scale.to(to), vertices.to(to))


def losses(out: EncoderOutput, target: Targets, encoder: ImageEncoder, dam: DeepAppearanceModel,
           config: EncoderTraining) -> dict[str, torch.Tensor]:
    code = (((out.z - target.codes) / encoder.code_scale) ** 2).mean()
    rotation = ((out.rotation - target.rotation) ** 2).sum((-1, -2)).mean()
    position = (out.uv - target.uv).abs().sum(-1).mean()
    scale = (out.scale - target.scale).abs().mean()
    pose = rotation + position + scale
    pairs = out.z.view(-1, 2, out.z.shape[-1])
    view = (((pairs[:, 0] - pairs[:, 1]) / encoder.code_scale) ** 2).mean()
    vertices = dam.decode_vertices(out.z)
    vertex = (((vertices - target.vertices) / dam.vertex_scale) ** 2).mean()
    total = (config.code_weight * code + config.pose_weight * pose + config.view_weight * view
             + config.vertex_weight * vertex)
    return {"total": total, "code": code, "rotation": rotation, "position": position,
            "scale": scale, "view": view, "vertex": vertex}


def _views_folder(work: Path, name: str, head: HeadAsset, dam: DeepAppearanceModel, count: int,
                  views: int, size: int, seed: int, model_dir: Path, sink: EventSink) -> LabViews:
    """The views folder work/name: `count` expressions drawn with `seed`, `views` renders
    each; rendered unless one made the same way is there."""
    folder = work / name
    wanted = {"views_per_expression": views, "crop_size": size, "seed": seed,
              "model": model_id(model_dir), "expressions": count,
              "head": head.topology_hash, "detector": "mediapipe", "expression_sampler": "lab+dense"}
    info_path = folder / "views.json"
    if info_path.is_file():
        info = json.loads(info_path.read_text())
        if info.get("format") == VIEWS_FORMAT and all(info.get(k) == v for k, v in wanted.items()):
            return LabViews.open(folder)
        sink.log(f"{folder} was rendered with other settings; rendering it again")
    sink.log(f"rendering {count * views} lab views into {folder}")
    weights = encoder_expressions(list(head.blendshape_names), count, np.random.default_rng(seed))
    make_views(head, dam, weights, views, size, seed, folder, sink, detector=wanted["detector"],
               provenance={k: wanted[k] for k in ("model", "expressions", "head", "expression_sampler")})
    return LabViews.open(folder)


def training_work(model_dir: Path, work: Path | None) -> Path:
    """The work folder of `train-encoder`: the cache's, one per model folder, unless given."""
    from ..cache import cache_dir

    if work is not None:
        return work
    key = hashlib.sha256(str(Path(model_dir).resolve()).encode()).hexdigest()[:12]
    return cache_dir() / "encoder-training" / f"{Path(model_dir).resolve().name}-{key}"


def train_encoder(model_dir: Path, work: Path, architecture: EncoderArchitecture,
                  config: EncoderTraining, resume: bool, sink: EventSink, device: str = "cpu",
                  initial: Path | None = None) -> Path:
    """Train the image encoder of the model folder `model_dir` on lab renders of its head
    (from the encoder of the model folder `initial` when given) and write encoder.json +
    encoder.safetensors into it; returns `model_dir`."""
    model_dir, work = Path(model_dir), Path(work)
    dam, _ = load_model(model_dir, device)
    head = load_model_head(model_dir)
    for parameter in dam.parameters():
        parameter.requires_grad_(False)
    if len(head.blendshapes) == 0:
        raise BadInput(f"the head of {model_dir} has no blendshapes: no expressions to learn")
    if config.batch_size < 2 or config.batch_size % 2:
        raise BadInput(f"--batch-size {config.batch_size}: must be even (two views per expression)")
    if config.budget is not None and config.budget <= 0:
        raise BadInput(f"--budget {config.budget}: must be a positive number of seconds")
    if config.landmark_steps < 0 or config.landmark_batch_size < 2 or config.landmark_batch_size % 2:
        raise BadInput(f"--landmark-steps {config.landmark_steps} and --landmark-batch-size "
                       f"{config.landmark_batch_size}: steps at least 0, an even batch")
    if config.expressions < max(config.batch_size, config.landmark_batch_size) // 2 or config.views < 2:
        raise BadInput(f"--expressions {config.expressions} and --views {config.views}: a batch needs "
                       f"{config.batch_size // 2} expressions and two views of each")
    architecture = EncoderArchitecture(**{**architecture.as_dict(), "latent": dam.config.latent})
    start_encoder = None
    if initial is not None:
        start_encoder, _ = load_encoder(initial)
        if start_encoder.config != architecture:
            its_flags = " ".join(command_flags(start_encoder.config, always=("landmark_code",)))
            raise BadInput(f"--init {initial}: its encoder ({start_encoder.config.as_dict()}) is not "
                           f"the architecture being trained ({architecture.as_dict()}); pass its "
                           f"options ({its_flags}) or another model")
    checkpoint_dir = work / "checkpoint"
    if (checkpoint_dir / CHECKPOINT).is_file() and not resume:
        raise BadInput(f"{checkpoint_dir / CHECKPOINT} holds an unfinished training; pass --resume "
                       "to continue it or choose another --work")
    checkpoint_dir.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(config.seed)
    lab = lab_renderer(head, dam)
    views = _views_folder(work, "views", head, dam, config.expressions, config.views,
                          architecture.crop_size, config.seed, model_dir, sink)
    train = np.arange(config.expressions)
    batches = ViewBatches(views, head, lab, device)
    _write_contact_sheet(views, work / "augmentation.png", config.seed)
    encoder = ImageEncoder(architecture).to(device)
    optimizer = torch.optim.Adam(encoder.parameters(), lr=config.learning_rate)
    step, elapsed = 0, 0.0
    rng = np.random.default_rng(config.seed)
    try:
        resumed = load_checkpoint(checkpoint_dir, encoder, optimizer) if resume else None
    except BadInput as exc:
        raise BadInput(f"{exc}; or, if the training was started with other architecture options "
                       "(a training started without --landmark-code before it became linear is "
                       "--landmark-code mlp), resume with those") from exc
    augmentation = Augmentation()
    linear_fit = None  # the closed-form start of a linear landmark code, when there is one
    if resumed is not None:
        step, elapsed, rng = resumed.step, resumed.elapsed, resumed.rng
        linear_fit = resumed.notes.get("linear_fit")
        sink.log(f"resuming at step {step} ({elapsed:.0f} s trained)")
    else:
        if start_encoder is not None:
            encoder.load_state_dict(start_encoder.state_dict())
        else:
            codes = torch.as_tensor(views.codes)
            encoder.code_mean.copy_(codes.mean(0))
            encoder.code_scale.copy_(codes.std(0).clamp(min=1e-3))
        if architecture.landmark_code == "linear":
            # Fitted afresh from a warm start too: another head's landmarks map to its codes
            # differently, and the landmark phase alone would hardly move the map.
            fit_rng = np.random.default_rng(config.seed + LINEAR_FIT_SEED)
            linear_fit = fit_linear_landmark_code(encoder, *landmark_samples(encoder, batches, train, fit_rng,
                                                                             augmentation))
            sink.log(f"linear landmark code fitted in closed form: {linear_fit}")
    history: list[dict[str, float]] = []
    landmark_history: list[dict[str, float]] = []
    start = time.perf_counter() - elapsed
    per_expression = batches.per_expression
    encoder.train()
    stopped_by_budget = False
    total = config.landmark_steps + config.steps
    # Landmark-phase steps run: fewer than the step counter says once the phase was cut.
    landmark_done = (resumed.notes.get("landmark_steps_done", min(step, config.landmark_steps))
                     if resumed is not None else 0)
    while step < total:
        used = time.perf_counter() - start
        if config.budget is not None and used >= config.budget:
            stopped_by_budget = True
            break
        if (config.budget is not None and step < config.landmark_steps
                and used >= LANDMARK_BUDGET_SHARE * config.budget):
            sink.warning(f"the encoder's landmark phase used {LANDMARK_BUDGET_SHARE:.0%} of the "
                         f"{config.budget:g}-s budget after {step} of its {config.landmark_steps} "
                         "steps: the image phase starts now")
            step = config.landmark_steps
            continue
        # First the landmark branch and the head alone on large image-free batches, then
        # everything on images; each phase has its own cosine schedule.
        images = step >= config.landmark_steps
        phase_step, phase_steps = ((step - config.landmark_steps, config.steps) if images
                                   else (step, config.landmark_steps))
        batch = config.batch_size if images else config.landmark_batch_size
        chosen = rng.choice(len(train), batch // 2, replace=False)
        pairs = np.stack([rng.choice(per_expression, 2, replace=False) for _ in chosen])
        indices = (chosen[:, None] * per_expression + pairs).reshape(-1)
        target = batches.make(indices, rng, augmentation, images)
        for group in optimizer.param_groups:
            group["lr"] = config.learning_rate * 0.5 * (1 + math.cos(math.pi * phase_step / phase_steps))
        terms = losses(encoder(target.crops, target.landmarks, target.confidence), target, encoder, dam, config)
        optimizer.zero_grad()
        terms["total"].backward()
        torch.nn.utils.clip_grad_norm_(encoder.parameters(), 1.0)
        optimizer.step()
        step += 1
        landmark_done += 0 if images else 1
        (history if images else landmark_history).append({k: float(v.detach()) for k, v in terms.items()})
        sink.progress("train encoder" if images else "train encoder (landmarks)", phase_step + 1, phase_steps)
        if step % config.checkpoint_every == 0 or step == total:
            save_checkpoint(checkpoint_dir / CHECKPOINT, encoder, optimizer, step, time.perf_counter() - start,
                            rng, {"landmark_steps_done": landmark_done, "linear_fit": linear_fit})
            recent = mean_losses((history if images else landmark_history)[-50:])
            sink.log(f"step {step}{'' if images else ' (landmarks)'}: "
                     + ", ".join(f"{k} {v:.4f}" for k, v in recent.items()))
    seconds = time.perf_counter() - start
    if stopped_by_budget:
        save_checkpoint(checkpoint_dir / CHECKPOINT, encoder, optimizer, step, seconds, rng,
                        {"landmark_steps_done": landmark_done, "linear_fit": linear_fit})
        sink.log(f"budget of {config.budget:g} s reached at step {step}; `--resume` continues")
    encoder.eval()
    evaluation_views = _views_folder(work, "evaluation-views", head, dam, config.evaluation_expressions,
                                     config.evaluation_views, architecture.crop_size,
                                     config.seed + EVALUATION_SEED, model_dir, sink)
    evaluation_batches = ViewBatches(evaluation_views, head, lab, device)
    # Held out before and after the code's offset is calibrated, so every run measures the step.
    uncalibrated = evaluate_encoder(encoder, dam, evaluation_batches, head, augmentation, config.seed)
    sink.progress("calibrate the code", 0, 1)
    calibration_start = time.perf_counter()
    calibration_rng = np.random.default_rng(config.seed + CALIBRATION_SEED)
    calibration = calibrate_code_bias(encoder, batches, train, calibration_rng, augmentation)
    calibration["seconds"] = round(time.perf_counter() - calibration_start, 1)
    sink.progress("calibrate the code", 1, 1)
    metrics = evaluate_encoder(encoder, dam, evaluation_batches, head, augmentation, config.seed)
    sink.log(f"code offset calibrated: shifted by {calibration['shift_norm']:.3f} (norm, code spreads); "
             f"held-out augmented vertex error {uncalibrated['augmented_vertex_mm']:.3f} -> "
             f"{metrics['augmented_vertex_mm']:.3f} mm")
    sink.log("held-out views: " + ", ".join(f"{k} {v:.3f}" for k, v in metrics.items()))
    save_encoder(model_dir, encoder, {
        "training": config.as_dict(),
        "metrics": metrics,
        "initial": str(Path(initial).resolve()) if initial is not None else None,
        "run": {"landmark_steps": landmark_done,
                "landmark_phase_cut": landmark_done < config.landmark_steps <= step,
                "steps": max(step - config.landmark_steps, 0), "seconds": round(seconds, 1),
                "stopped_by_budget": stopped_by_budget, "linear_landmark_code_fit": linear_fit,
                "code_bias_calibration": {**calibration, "held_out_before": uncalibrated},
                # Over both phases' seconds: the landmark phase costs a few minutes.
                "images_per_s_overall": round(max(step - config.landmark_steps, 0) * config.batch_size
                                              / max(seconds, 1e-9), 2),
                "landmark_phase_losses": {"first": mean_losses(landmark_history[:10]),
                                          "final": mean_losses(landmark_history[-50:])},
                "first_losses": mean_losses(history[:10]), "final_losses": mean_losses(history[-50:]),
                "loss_curve": loss_curve(history),
                "threads": torch.get_num_threads(), "machine": platform.machine(), "device": device},
        "reproduce": _command(config, architecture),
    })
    return model_dir


@torch.no_grad()
def evaluate_encoder(encoder: ImageEncoder, dam: DeepAppearanceModel, batches: ViewBatches,
                     head: HeadAsset, augmentation: Augmentation, seed: int) -> dict[str, float]:
    """Held-out expressions from unseen views, clean and augmented (seeded): vertex error (mm,
    face region; mean), rotation error (degrees), code error (units of the codes' spread)."""
    face = torch.as_tensor(head.face_region)
    metrics: dict[str, float] = {}
    total = len(batches.views.expression)
    for label, aug in (("clean", None), ("augmented", augmentation)):
        rng = np.random.default_rng(seed + EVALUATION_SEED)
        vertex, rotation, code = [], [], []
        for begin in range(0, total, 32):
            indices = np.arange(begin, min(begin + 32, total))
            target = batches.make(indices, rng, aug)
            out = encoder(target.crops, target.landmarks, target.confidence)
            decoded = dam.decode_vertices(out.z).cpu()
            vertex.append(((decoded - target.vertices.cpu()).norm(dim=-1)[:, face] * 1000).mean(1))
            relative = out.rotation.transpose(-1, -2) @ target.rotation
            cos = ((relative.diagonal(dim1=-2, dim2=-1).sum(-1) - 1) / 2).clamp(-1, 1)
            rotation.append(torch.rad2deg(torch.acos(cos)).cpu())
            code.append((((out.z - target.codes) / encoder.code_scale) ** 2).mean(-1).sqrt().cpu())
        metrics[f"{label}_vertex_mm"] = float(torch.cat(vertex).mean())
        metrics[f"{label}_rotation_deg"] = float(torch.cat(rotation).mean())
        metrics[f"{label}_code_error"] = float(torch.cat(code).mean())
    return metrics


def _write_contact_sheet(views: LabViews, path: Path, seed: int) -> None:
    """Six training views and their augmentations, as training sees them (PNG)."""
    import cv2

    pick = np.linspace(0, len(views.expression) - 1, 6).astype(int)
    sheet = contact_sheet(views.crops[pick], views.masks[pick], np.random.default_rng(seed))
    with atomic_file(path) as tmp:
        cv2.imwrite(str(tmp.with_suffix(".png")), sheet[..., ::-1])
        tmp.with_suffix(".png").replace(tmp)


def _command(config: EncoderTraining, architecture: EncoderArchitecture) -> str:
    """The train-encoder command line of `config` and `architecture`."""
    return " ".join(["python -m backend train-encoder MODEL",
                     *command_flags(config, always=("steps", "landmark_steps", "batch_size", "seed")),
                     *command_flags(architecture, always=("landmark_code",))])
