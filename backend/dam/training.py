"""`train-dam`: learning a Deep Appearance Model from a lab capture.

Loss per batch (one random camera per expression): vertex MSE on normalised vertices,
masked texture L1 on the view's visible texels (normalised), KL of the latent against N(0, I).
Checkpoints (model, optimiser, step, RNG; dam/checkpoint.py, never unpickled) every
`checkpoint_every` steps; `--resume` continues from the last one bit-for-bit. `--budget` stops
early after that many seconds of training (with a checkpoint, so `--resume` goes on). `--init`
starts from another model's weights (a warm start: a personal model from the default one) with
the normalisation measured on this capture, so the network's residuals start where the other
head's left off.
"""

from __future__ import annotations

import platform
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from ..config_parser import option
from ..events import EventSink
from ..formats.errors import BadInput
from ..lab.capture import LabCapture
from ..training_history import loss_curve, mean_losses
from .checkpoint import CHECKPOINT, load_checkpoint, save_checkpoint
from .model import DamArchitecture, DeepAppearanceModel
from .model_folder import load_model, save_model, save_model_head
from .training_data import Batch, BatchMaker


def set_normalisation(model: DeepAppearanceModel, capture: LabCapture, maker: BatchMaker,
                      train: np.ndarray) -> None:
    """Vertex and texture statistics of (a subset of) the training expressions."""
    subset = train[np.linspace(0, len(train) - 1, min(len(train), 400)).astype(int)]
    with torch.no_grad():
        weights = torch.as_tensor(capture.weights[subset], device=maker.lab.device)
        vertices = maker.lab.vertices(weights).reshape(len(subset), -1)
        model.vertex_mean.copy_(vertices.mean(0))
        model.vertex_scale.copy_((vertices - vertices.mean(0)).std().clamp(min=1e-6))
        textures = torch.as_tensor(np.asarray(capture.average_texture[subset]),
                                   device=maker.lab.device).permute(0, 3, 1, 2).float() / 255
        model.texture_mean.copy_(textures.mean(0))
        model.texture_scale.copy_((textures - textures.mean(0)).std().clamp(min=1e-3))


@dataclass(frozen=True)
class DamTraining:
    """How a model is trained (model.json "trainer"); the network's shape is DamArchitecture."""

    kl_weight: float = 1e-3
    vertex_weight: float = 1.0
    texture_weight: float = 1.0
    batch_size: int = option(16, "samples per step")
    learning_rate: float = option(5e-4, "Adam's learning rate")
    gradient_clip: float = 1.0
    steps: int = option(4000, "training steps")
    budget: float | None = option(None, "stop after this many seconds of training (resumable)")
    seed: int = option(0, "seed of the initialisation and the sampling")
    checkpoint_every: int = option(500, "steps between checkpoints (a resumed run continues there)")

    def as_dict(self) -> dict:
        return asdict(self)


def losses(model: DeepAppearanceModel, batch: Batch, config: DamTraining) -> dict[str, torch.Tensor]:
    vertices, texture, mean, log_variance = model(batch.vertices, batch.average_texture, batch.view_dir)
    vertex = (((vertices - batch.vertices) / model.vertex_scale) ** 2).mean()
    # Texels no view of the sample saw are learnt from the capture's albedo fill (else they
    # decode to whatever the untrained weights give: black, on a double's neck and eyes).
    target = torch.where(batch.visible[:, None], batch.texture, batch.average_texture)
    mask = (batch.visible | batch.unseen)[:, None].float()
    texel = ((texture - target).abs() / model.texture_scale * mask).sum()
    texture_loss = texel / (mask.sum() * 3).clamp(min=1)
    kl = -0.5 * (1 + log_variance - mean**2 - log_variance.exp()).sum(1).mean()
    total = config.vertex_weight * vertex + config.texture_weight * texture_loss + config.kl_weight * kl
    return {"total": total, "vertex": vertex, "texture": texture_loss, "kl": kl}


def warm_start(model: DeepAppearanceModel, initial: Path) -> list[str]:
    """Copy the weights of the model folder `initial` into `model` (same architecture, else
    BadInput naming what differs). From a model of another head topology (a digital double)
    every weight but those sized by the vertex count is copied; those start fresh, and their
    names are returned."""
    source, info = load_model(initial)
    if source.config != model.config:
        raise BadInput(f"--init {initial}: its DAM ({info.get('architecture')}) is not the "
                       f"architecture being trained ({model.config.as_dict()}); pass a model of "
                       "the same architecture")
    own = model.state_dict()
    given = {name: tensor for name, tensor in source.state_dict().items()
             if own[name].shape == tensor.shape}
    model.load_state_dict({**own, **given})
    return sorted(set(own) - set(given))


def train_dam(capture_dir: Path, out: Path, architecture: DamArchitecture, config: DamTraining,
              resume: bool, sink: EventSink, device: str = "cpu", initial: Path | None = None) -> Path:
    """Train a model of `architecture` with the settings `config` (from the weights of the
    model folder `initial` when given) and write the model folder `out` (model.json +
    weights.safetensors); returns `out`."""
    if config.budget is not None and config.budget <= 0:
        raise BadInput(f"--budget {config.budget}: must be a positive number of seconds")
    capture = LabCapture.open(capture_dir)
    if capture.config.texture_size != architecture.texture_size:
        raise BadInput(f"the capture's textures are {capture.config.texture_size}^2 but "
                       f"--texture-size is {architecture.texture_size}; they must match")
    out = Path(out)
    checkpoint_path = out / CHECKPOINT
    if out.exists() and not resume and any(out.iterdir()):
        raise BadInput(f"--out {out} is not empty; pass --resume to continue its training or "
                       "choose another folder")
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(config.seed)
    rng = np.random.default_rng(config.seed)
    maker = BatchMaker(capture, device)
    train = np.flatnonzero(~capture.held_out)
    model = DeepAppearanceModel(architecture, capture.head.num_vertices).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.learning_rate)
    step, elapsed = 0, 0.0
    resumed = load_checkpoint(out, model, optimizer) if resume else None
    if resumed is not None:
        step, elapsed, rng = resumed.step, resumed.elapsed, resumed.rng
        sink.log(f"resuming at step {step}")
    else:
        if initial is not None:
            fresh = warm_start(model, initial)
            if fresh:
                sink.log(f"--init {initial}: its head has another vertex count than this "
                         f"capture's ({model.num_vertices}); {', '.join(fresh)} start fresh")
        set_normalisation(model, capture, maker, train)
    history: list[dict[str, float]] = []
    start = time.perf_counter() - elapsed
    model.train()
    stopped_by_budget = False
    skipped = 0
    while step < config.steps:
        if config.budget is not None and time.perf_counter() - start >= config.budget:
            stopped_by_budget = True
            break
        samples = rng.choice(train, config.batch_size, replace=len(train) < config.batch_size)
        cameras = rng.integers(0, capture.config.cameras, config.batch_size)
        batch = maker.make(samples, cameras)
        terms = losses(model, batch, config)
        optimizer.zero_grad()
        step += 1
        if not torch.isfinite(terms["total"]):
            # One batch whose loss overflows must not turn every weight into NaN (the gradient
            # clip scales by a non-finite norm): the step is skipped, counted and reported.
            skipped += 1
            sink.progress("train", step, config.steps)
            continue
        terms["total"].backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), config.gradient_clip)
        optimizer.step()
        history.append({k: float(v.detach()) for k, v in terms.items()})
        sink.progress("train", step, config.steps)
        if step % config.checkpoint_every == 0 or step == config.steps:
            save_checkpoint(checkpoint_path, model, optimizer, step, time.perf_counter() - start, rng)
            recent = mean_losses(history[-50:])
            sink.log(f"step {step}: " + ", ".join(f"{k} {v:.4f}" for k, v in recent.items()))
    seconds = time.perf_counter() - start
    if stopped_by_budget:
        save_checkpoint(checkpoint_path, model, optimizer, step, seconds, rng)
        sink.log(f"budget of {config.budget:g} s reached at step {step}; `--resume` continues")
    if skipped:
        sink.warning(f"{skipped} of {step} training steps had a loss that was not finite and were "
                     "skipped")
    save_model(out, model, {
        "trainer": config.as_dict(), "seed": config.seed, "capture": str(Path(capture_dir).resolve()),
        "capture_config": capture.config.__dict__, "topology_hash": capture.head.topology_hash,
        "blendshape_names": capture.head.blendshape_names,
        "initial": str(Path(initial).resolve()) if initial is not None else None,
        "training": {"steps": step, "seconds": round(seconds, 1), "stopped_by_budget": stopped_by_budget,
                     "nonfinite_steps_skipped": skipped,
                     "samples_per_s": round(step * config.batch_size / max(seconds, 1e-9), 2),
                     "first_losses": mean_losses(history[:10]),
                     "final_losses": mean_losses(history[-50:]),
                     "loss_curve": loss_curve(history),
                     "threads": torch.get_num_threads(), "machine": platform.machine(),
                     "device": device},
        "reproduce": f"python -m backend train-dam CAPTURE --out MODEL --steps {config.steps} "
                     f"--batch-size {config.batch_size} --seed {config.seed} --latent "
                     f"{architecture.latent} --texture-size {architecture.texture_size}"
                     + (f" --init {initial}" if initial is not None else ""),
    })
    # The model folder carries its head: train-encoder and the face-model trackers need it.
    save_model_head(out, capture.head)
    return out
