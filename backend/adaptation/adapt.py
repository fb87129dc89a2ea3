"""Adapting the image encoder to one clip with no labels (DESIGN.md, method step 3).

Each step draws `pairs` consecutive frame pairs (t, t+1) from anywhere in the clip, runs the
encoder on their crops, decodes the vertices with the frozen DAM, places them with the
predicted pose in the crop camera (footage intrinsics with the adapted focal length, through
each crop's similarity) and minimises

    L_S = λT L_T + λL L_L + λA L_A + λprior L_prior + λsmooth L_smooth + λanchor L_anchor

- L_T: the pair's frames unwrapped into UV space through their meshes agree on texels both see
  (face region only);
- L_L: the landmark vertices land on the detections (confidence-weighted, robust);
- L_A: the first `appearance_frames` frames of the step, unwrapped and passed through the
  clip's colour transform, agree with the DAM texture decoded for their view;
- L_prior: the codes stay in the distribution the encoder was trained on (its code mean and
  spread); L_smooth: a pair's codes and camera-space poses are close; L_anchor: the outputs
  stay near the unadapted encoder's (computed once, before the first step).

The image terms (L_T, L_A) see the rigid pose detached: they shape the expression, while the
pose and the focal length follow the landmarks, smoothness and anchor (measured in
docs/adaptation.md). The encoder, the colour transform and the focal length adapt; the DAM is
frozen. The number of
steps is `passes` x frames / (2 x pairs), so the cost is linear in the clip's length; crops are
read from the memory-mapped crop folder by batch.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from ..dam.model import DeepAppearanceModel
from ..encoder.crop_pose import pose_from_crop, rotation_from_6d, rotation_to_6d
from ..encoder.network import EncoderOutput, ImageEncoder
from ..events import EventSink
from ..formats.errors import BadInput
from ..formats.head_file import HeadAsset
from ..lab.capture import face_centre_and_height
from ..render.unwrap import UVAtlas, make_atlas, unwrap
from .clip_crops import ClipCrops
from .config import TERMS, AdaptationConfig
from .losses import ColourTransform, appearance_loss, landmark_loss, texture_consistency_loss

STAGE = "adapt"
# Fewer steps than this move the encoder little (a 12-frame clip needed 30: docs/adaptation.md).
FEW_STEPS = 20


@dataclass
class Prediction:
    """The encoder's outputs for a clip (F frames), unadapted or adapted: z (F, Z); rotation
    (F, 3, 3), uv (F, 2), scale (F,) crop-relative (crop_pose.py)."""

    z: np.ndarray
    rotation: np.ndarray
    uv: np.ndarray
    scale: np.ndarray


@dataclass
class ClipFit:
    """What an optimisation over the clip found besides its per-frame outputs: the clip's colour
    transform (3, 3) and offset (3,), the focal length (pixels of the footage) and the mean loss
    terms of every tenth of the steps (`history`), with the step count and seconds."""

    colour_matrix: np.ndarray
    colour_offset: np.ndarray
    focal_px: float
    history: list[dict[str, float]]
    steps: int
    seconds: float
    used_texture_term: bool


@dataclass
class Adapted:
    """The adaptation's result: the adapted encoder and the fit."""

    encoder: ImageEncoder
    fit: ClipFit


def footage_intrinsics(focal: torch.Tensor, width: int, height: int) -> torch.Tensor:
    """(3, 3) a centred pinhole camera of focal length `focal` (scalar tensor, pixels)."""
    k = torch.zeros(3, 3, dtype=focal.dtype, device=focal.device)
    k[0, 0] = k[1, 1] = focal
    k[0, 2], k[1, 2], k[2, 2] = (width - 1) / 2, (height - 1) / 2, 1.0
    return k


@torch.no_grad()
def predict(encoder: ImageEncoder, crops: ClipCrops, device: str, batch: int = 32,
            sink: EventSink | None = None, stage: str = "encode") -> Prediction:
    """The encoder's outputs on every tracked frame of the crop folder (zeros elsewhere)."""
    frames = len(crops)
    z = np.zeros((frames, encoder.config.latent), np.float32)
    rotation = np.tile(np.eye(3, dtype=np.float32), (frames, 1, 1))
    uv = np.zeros((frames, 2), np.float32)
    scale = np.zeros(frames, np.float32)
    tracked = np.nonzero(crops.tracked)[0]
    for begin in range(0, len(tracked), batch):
        index = tracked[begin:begin + batch]
        out = _encode(encoder, crops, index, device)
        z[index], rotation[index] = out.z.cpu().numpy(), out.rotation.cpu().numpy()
        uv[index], scale[index] = out.uv.cpu().numpy(), out.scale.cpu().numpy()
        if sink is not None:
            sink.progress(stage, min(begin + batch, len(tracked)), len(tracked))
    return Prediction(z, rotation, uv, scale)


def _encode(encoder: ImageEncoder, crops: ClipCrops, index: np.ndarray, device: str) -> EncoderOutput:
    pixels = torch.as_tensor(np.asarray(crops.crops[index]), device=device).permute(0, 3, 1, 2).float() / 255
    return encoder(pixels, torch.as_tensor(crops.landmarks[index], device=device),
                   torch.as_tensor(crops.confidence[index], device=device))


def view_directions(pose: torch.Tensor, face_centre: torch.Tensor) -> torch.Tensor:
    """(B, 3) unit head-space directions from the face centre toward the camera of rigid
    head -> camera poses (B, 4, 4) (the DAM's view convention, decoded_textures.py)."""
    rotation, translation = pose[:, :3, :3], pose[:, :3, 3]
    camera = -(rotation.transpose(1, 2) @ translation[..., None])[..., 0]
    return F.normalize(camera - face_centre, dim=-1)


def consecutive_pairs(tracked: np.ndarray) -> np.ndarray:
    """(P,) frames t with t and t+1 both tracked."""
    return np.nonzero(tracked[:-1] & tracked[1:])[0]


def adapt_encoder(encoder: ImageEncoder, dam: DeepAppearanceModel, head: HeadAsset, crops: ClipCrops,
                  width: int, height: int, focal_px: float, config: AdaptationConfig,
                  initial: Prediction, device: str, sink: EventSink) -> Adapted:
    """Adapt a copy of `encoder` to the clip of `crops` (footage width x height pixels, focal
    length `focal_px` assumed to start); `initial` is the unadapted encoder's prediction."""
    encoder = copy.deepcopy(encoder).to(device).train()
    fit = _optimise(lambda index: _encode(encoder, crops, index, device), list(encoder.parameters()),
                    config.learning_rate, encoder, dam, head, crops, width, height, focal_px, config,
                    initial, device, sink)
    encoder.eval()
    return Adapted(encoder, fit)


class FrameParameters(torch.nn.Module):
    """Free per-frame outputs (the analysis-by-synthesis alternative to adapting the
    encoder): codes (F, Z) and crop-relative poses, starting at a prediction."""

    def __init__(self, initial: Prediction, device: str) -> None:
        super().__init__()

        def parameter(array: np.ndarray) -> torch.nn.Parameter:
            return torch.nn.Parameter(torch.as_tensor(array, dtype=torch.float32, device=device).clone())

        self.z, self.uv, self.scale = parameter(initial.z), parameter(initial.uv), parameter(initial.scale)
        self.rotation_6d = parameter(rotation_to_6d(torch.as_tensor(initial.rotation)).numpy())

    def forward(self, index: np.ndarray) -> EncoderOutput:
        rows = torch.as_tensor(index, device=self.z.device)
        six = self.rotation_6d[rows]
        return EncoderOutput(self.z[rows], rotation_from_6d(six), self.uv[rows], self.scale[rows], six)

    def prediction(self) -> Prediction:
        with torch.no_grad():
            rotation = rotation_from_6d(self.rotation_6d)
        return Prediction(*(t.detach().cpu().numpy() for t in (self.z, rotation, self.uv, self.scale)))


@dataclass
class FittedFrames:
    """The per-frame optimisation's result: the fitted outputs and the fit."""

    prediction: Prediction
    fit: ClipFit


def fit_frames(encoder: ImageEncoder, dam: DeepAppearanceModel, head: HeadAsset, crops: ClipCrops,
               width: int, height: int, focal_px: float, config: AdaptationConfig, initial: Prediction,
               device: str, sink: EventSink, stage: str = STAGE, warn_budget: bool = True,
               free_codes: bool = True, free_poses: bool = True,
               colour: tuple[np.ndarray, np.ndarray] | None = None) -> FittedFrames:
    """Optimise every frame's code and pose directly with the adaptation's losses and budget,
    starting at `initial` (`encoder` lends only its code statistics to the prior; L_anchor holds
    the frames near `initial`): the comparison the paper's choice of adapting the encoder must
    win, from the unadapted encoder's prediction (`--tracker latent-fit`), and the adapted
    tracker's refinement on the landmarks, from the adapted one's. Progress is reported as
    `stage`; `warn_budget` False leaves out the budget warnings (their advice names
    --adapt-passes and L_T, which a refinement does not use). free_codes / free_poses False hold
    the codes / the poses at `initial` (with both held only the colour transform and the focal
    length are fitted); `colour` (3x3 matrix, offset (3,)) starts the colour transform elsewhere
    than at the identity."""
    frames = FrameParameters(initial, device)
    codes, poses = [frames.z], [frames.rotation_6d, frames.uv, frames.scale]
    for held in ([] if free_codes else codes) + ([] if free_poses else poses):
        held.requires_grad_(False)  # no gradient computed for what cannot move
    free = (codes if free_codes else []) + (poses if free_poses else [])
    fit = _optimise(frames, free, config.frame_learning_rate, encoder, dam, head,
                    crops, width, height, focal_px, config, initial, device, sink, stage, warn_budget,
                    colour)
    return FittedFrames(frames.prediction(), fit)


def budget_warnings(tracked: np.ndarray, config: AdaptationConfig) -> list[str]:
    """What the user must know of the adaptation's budget on a clip whose frames with a face are
    `tracked` (F,) bool: no frame pairs (so no L_T), or too few steps to adapt much."""
    count, paired = int(tracked.sum()), len(consecutive_pairs(tracked)) > 0
    warnings = [] if paired else ["no two consecutive frames have a face (a one-frame clip?): adapting "
                                  "without the texture-consistency term L_T"]
    frames_per_step, steps = _budget(tracked, config)
    if count and steps < FEW_STEPS:
        enough = FEW_STEPS * frames_per_step / count
        warnings.append(f"the clip has {count} frame(s) with a face: --adapt-passes {config.passes:g} gives "
                        f"{steps} adaptation step(s) of {frames_per_step} frames, too few to move far from "
                        f"the unadapted encoder; --adapt-passes {math.ceil(enough)} gives {FEW_STEPS}")
    return warnings


def _budget(tracked: np.ndarray, config: AdaptationConfig) -> tuple[int, int]:
    """(frames per step, steps): a step takes `pairs` consecutive pairs, or `pairs` frames when
    the clip has none; steps = passes x frames with a face / frames per step."""
    frames_per_step = 2 * config.pairs if len(consecutive_pairs(tracked)) else config.pairs
    return frames_per_step, max(1, math.ceil(config.passes * int(tracked.sum()) / frames_per_step))


def _optimise(outputs: Callable[[np.ndarray], EncoderOutput], parameters: list[torch.nn.Parameter],
              learning_rate: float, encoder: ImageEncoder, dam: DeepAppearanceModel, head: HeadAsset,
              crops: ClipCrops, width: int, height: int, focal_px: float, config: AdaptationConfig,
              initial: Prediction, device: str, sink: EventSink, stage: str = STAGE,
              warn_budget: bool = True,
              colour_start: tuple[np.ndarray, np.ndarray] | None = None) -> ClipFit:
    """The loop the adaptation, the per-frame fit and the refinement share: minimise L_S over
    `parameters` (with the colour transform, from `colour_start` (matrix, offset) or the
    identity, and the focal length), `outputs(frame indices)` giving
    the per-frame codes and poses. Frames are drawn as consecutive pairs when the clip has any,
    so a tracked frame between two untracked ones is never drawn then."""
    tracked = np.nonzero(crops.tracked)[0]
    if len(tracked) == 0:
        raise BadInput("no frame of the clip has a confident face: nothing to adapt to")
    pairs = consecutive_pairs(crops.tracked)
    use_texture = len(pairs) > 0 and config.texture_weight > 0
    _, steps = _budget(crops.tracked, config)
    if warn_budget:
        for warning in budget_warnings(crops.tracked, config):
            sink.warning(warning)
    for parameter in dam.parameters():
        parameter.requires_grad_(False)
    colour = ColourTransform().to(device)
    if colour_start is not None:
        with torch.no_grad():
            colour.matrix.copy_(torch.as_tensor(colour_start[0]))
            colour.offset.copy_(torch.as_tensor(colour_start[1]))
    log_focal = torch.zeros((), device=device, requires_grad=not config.fixed_focal)
    groups = [{"params": parameters, "lr": learning_rate},
              {"params": list(colour.parameters()), "lr": config.learning_rate * 100}]
    if not config.fixed_focal:
        groups.append({"params": [log_focal], "lr": config.learning_rate * 100})
    optimizer = torch.optim.Adam(groups)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, steps)
    losses = _Losses(encoder.code_mean.detach(), encoder.code_scale.detach(), dam, head, crops, width, height,
                     focal_px, config, initial, device)
    rng = np.random.default_rng(config.seed)
    history: list[dict[str, float]] = []
    window: list[dict[str, float]] = []
    start = time.perf_counter()
    for step in range(steps):
        if len(pairs):
            first = rng.choice(pairs, config.pairs)
            index = np.concatenate([first, first + 1])
        else:
            index = rng.choice(tracked, config.pairs)
        terms = losses(index, outputs(index), log_focal, colour, paired=len(pairs) > 0, texture=use_texture)
        total = sum(getattr(config, f"{name}_weight") * value for name, value in terms.items())
        optimizer.zero_grad()
        total.backward()
        optimizer.step()
        schedule.step()
        figures = {name: value.item() for name, value in terms.items()}
        window.append(figures)
        if len(window) >= max(1, steps // 10) or step == steps - 1:
            history.append({name: float(np.mean([w[name] for w in window])) for name in window[0]})
            window.clear()
        sink.progress(stage, step + 1, steps, values={k: round(v, 5) for k, v in figures.items()})
    return ClipFit(colour.matrix.detach().cpu().numpy(), colour.offset.detach().cpu().numpy(),
                   float(focal_px * math.exp(log_focal.item())), history, steps, time.perf_counter() - start,
                   use_texture)


class _Losses:
    """The loss terms of one step (see the module's note)."""

    def __init__(self, code_mean: torch.Tensor, code_scale: torch.Tensor, dam: DeepAppearanceModel,
                 head: HeadAsset, crops: ClipCrops, width: int, height: int, focal_px: float,
                 config: AdaptationConfig, initial: Prediction, device: str) -> None:
        self.code_mean, self.code_scale = code_mean, code_scale
        self.dam, self.crops, self.config, self.device = dam, crops, config, device
        self.width, self.height, self.focal = width, height, focal_px
        centre, self.face_height = face_centre_and_height(head)
        self.centre = torch.as_tensor(centre, dtype=torch.float32, device=device)
        self.faces = torch.as_tensor(head.faces, device=device)
        self.landmark_vertex = torch.as_tensor(head.landmark_vertex, dtype=torch.int64, device=device)
        self.atlas: UVAtlas = make_atlas(torch.as_tensor(head.uv), torch.as_tensor(head.uv_faces),
                                         torch.as_tensor(head.faces), config.texels).to(device)
        face_texel = torch.zeros(config.texels ** 2, dtype=torch.bool, device=device)
        face_texel[self.atlas.texel_index] = torch.as_tensor(head.face_region, device=device)[
            self.atlas.corners].all(1)
        self.face_texel = face_texel.view(config.texels, config.texels)
        self.initial = {name: torch.as_tensor(getattr(initial, name), device=device)
                        for name in ("z", "rotation", "uv", "scale")}

    def __call__(self, index: np.ndarray, out: EncoderOutput, log_focal: torch.Tensor, colour: ColourTransform,
                 paired: bool, texture: bool) -> dict[str, torch.Tensor]:
        crops, config = self.crops, self.config
        size = crops.size
        k = footage_intrinsics(self.focal * torch.exp(log_focal), self.width, self.height)
        crop_k = torch.as_tensor(crops.similarity[index], device=self.device) @ k
        pose = pose_from_crop(out.rotation, out.uv, out.scale, crop_k, size, self.centre, self.face_height)
        vertices = self.dam.decode_vertices(out.z)
        camera = vertices @ pose[:, :3, :3].transpose(1, 2) + pose[:, None, :3, 3]
        terms = {"landmark": landmark_loss(camera[:, self.landmark_vertex], crop_k,
                                           torch.as_tensor(crops.landmarks[index], device=self.device),
                                           torch.as_tensor(crops.confidence[index], device=self.device),
                                           size)}
        needs_images = texture or (config.appearance_weight > 0 and config.appearance_frames > 0)
        zero = out.z.new_zeros(())
        unwrapped = visible = None
        if needs_images:
            pixels = torch.as_tensor(np.asarray(crops.crops[index]), device=self.device).permute(0, 3, 1, 2)
            # The image terms shape the expression only: through a detached pose (docs/adaptation.md:
            # letting them move it cost landmark accuracy and drove the focal length away).
            rigid, crop_k_fixed = pose.detach(), crop_k.detach()
            placed = vertices @ rigid[:, :3, :3].transpose(1, 2) + rigid[:, None, :3, 3]
            unwrapped, visible = unwrap(pixels.float() / 255, placed, crop_k_fixed, self.faces, self.atlas)
            visible = visible & self.face_texel
        half = len(index) // 2
        terms["texture"] = (texture_consistency_loss(unwrapped[:half], visible[:half], unwrapped[half:],
                                                     visible[half:]) if texture and paired else zero)
        shown = min(config.appearance_frames, len(index)) if config.appearance_weight > 0 else 0
        if shown and unwrapped is not None:
            view = view_directions(rigid[:shown], self.centre)
            decoded = self.dam.decode_texture_for_view(out.z[:shown], view)
            decoded = F.interpolate(decoded, size=(config.texels, config.texels), mode="area")
            terms["appearance"] = appearance_loss(unwrapped[:shown], visible[:shown], decoded, colour,
                                                  config.shading_window, config.shading_weight)
        else:
            terms["appearance"] = zero
        spread = self.code_scale
        terms["prior"] = (((out.z - self.code_mean) / spread) ** 2).mean()
        if paired:
            a, b = slice(0, half), slice(half, None)
            terms["smooth"] = ((((out.z[a] - out.z[b]) / spread) ** 2).mean()
                               + ((pose[a, :3, :3] - pose[b, :3, :3]) ** 2).sum((1, 2)).mean()
                               + (((pose[a, :3, 3] - pose[b, :3, 3]) / self.face_height) ** 2).sum(1).mean())
        else:
            terms["smooth"] = zero
        rows = torch.as_tensor(index, device=self.device)
        start = {name: value[rows] for name, value in self.initial.items()}
        terms["anchor"] = ((((out.z - start["z"]) / spread) ** 2).mean()
                           + ((out.rotation - start["rotation"]) ** 2).sum((1, 2)).mean()
                           + ((out.uv - start["uv"]) ** 2).sum(1).mean()
                           + ((out.scale - start["scale"]) ** 2).mean())
        return {name: terms[name] for name in TERMS}
