"""The encoder's training views: lab expressions seen as footage would show them.

For every expression (weights on the model head's shapes, drawn as the lab capture draws them:
lab.capture.expression_weights), `views` renders, each through a face crop placed the way
tracking places it (from the landmarks, with a detector's error), under a random camera
and light: lens 20-100 mm (35 mm equivalent), the face 12-60 % of the frame height anywhere in
its central part, head rotation relative to the line of sight (yaw within the capture's range,
pitch, roll), one directional light from the camera's side with random ambient and specular.
What does not need a render (backgrounds, colour, blur, noise, compression, occluders) is
augmentation.py's, drawn anew every step. The landmark detector the tracker uses runs on every
render, so the encoder learns from the detector's own errors (its biases follow pose and
expression; a Gaussian cannot teach them), not only from the truth.

A views folder (memory-mapped, so training reads only its batch):

    views.json        config, counts, the model it was made for
    crops.npy         (N, S, S, 3) uint8 renders, black off the head
    masks.npy         (N, S, S) uint8 255 on the head
    expression.npy    (N,) int64 index into the expressions
    poses.npy         (N, 4, 4) f32 head -> camera of the view
    intrinsics.npy    (N, 3, 3) f32 the crop camera (pixels of the crop)
    detected.npy      (N, 68, 2) f32 the detector's landmarks on the render, crop pixels
    detected_found.npy (N,) bool  whether it found the face
    weights.npy       (E, K) f32 the expressions' weights on the head's shapes
    codes.npy         (E, Z) f32 the DAM encoder's code (mean) of every expression

The code of an expression is the DAM encoder's mean for its vertices and the model's mean
texture (the texture input of the DAM encoder, normalised to zero): in the lab the texture of
an expression is its shading, a function of its geometry, and the measured difference is
small (docs/encoder.md: 0.02 mm between the vertices decoded from codes with the capture's
true view-averaged texture and with the mean texture), while rendering the 8-camera average
of every expression would cost 8 renders and unwraps each.
"""

from __future__ import annotations

import json
import math
import os
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from ..dam.model import DeepAppearanceModel
from ..events import EventSink
from ..formats.errors import BadInput
from ..formats.head_file import HeadAsset
from ..head_space import HEAD_TO_FRONT_CAMERA
from ..lab.capture import CaptureConfig, LabRenderer, expression_weights, face_centre_and_height
from ..landmarks.detector_factory import create_detector
from ..render.shading import render_textured
from .crop import box_from_landmarks, crop_intrinsics

VIEWS_FORMAT = 2
FRAME_PX = 1000.0  # the virtual footage's side; only ratios to it matter
LIGHT_GROUP = 8  # consecutive views rendered together under one light


@dataclass(frozen=True)
class ViewSampling:
    """How views are drawn (degrees, millimetres, fractions of the frame or crop)."""

    lens_low_mm: float = 20.0
    lens_high_mm: float = 100.0
    face_low: float = 0.12  # face height / frame height
    face_high: float = 0.6
    position_spread: float = 0.3  # face centre within the frame centre +- this fraction
    pitch_low: float = -30.0
    pitch_high: float = 35.0
    roll_sigma: float = 8.0
    landmark_sigma: float = 0.015  # per-point detector error, fraction of the face height
    box_shift_sigma: float = 0.04  # crop centre error, fraction of the side
    box_scale_sigma: float = 0.07  # log crop side error


def _rotation(axis: int, degrees: float) -> np.ndarray:
    c, s = math.cos(math.radians(degrees)), math.sin(math.radians(degrees))
    i, j = [a for a in range(3) if a != axis]
    r = np.eye(3)
    r[i, i], r[i, j], r[j, i], r[j, j] = c, -s, s, c
    return r


DENSE_FRACTION = 0.5  # of the training expressions: dense mixes (encoder_expressions)


def encoder_expressions(names: list[str], count: int, rng: np.random.Generator) -> np.ndarray:
    """(count, K) the encoder's training expressions: half as the lab capture draws them
    (lab.capture.expression_weights: each shape alone, co-activations, mixes of 1-5), half
    dense mixes as performances move the face: every shape active with a probability drawn
    per expression (0.1-0.5), at mostly small weights (uniform squared), a Left shape's Right
    twin often with it. Why: on the default head's ground-truth clips 9-16 shapes are above
    0.05 per frame (2.9 in the lab sampler's draws), and an encoder trained on sparse mixes
    alone regresses dense ones toward them."""
    dense = round(count * DENSE_FRACTION)
    rows = [expression_weights(names, count - dense, rng)]
    k = len(names)
    twin = np.array([names.index(n.replace("Left", "Right")) if "Left" in n and n.replace("Left", "Right")
                     in names else -1 for n in names])
    mixes = np.zeros((dense, k), np.float32)
    for row in mixes:
        active = rng.random(k) < rng.uniform(0.1, 0.5)
        row[active] = rng.uniform(0, 1, int(active.sum())) ** 2
        paired = (twin >= 0) & (rng.random(k) < 0.6)
        row[twin[paired]] = np.clip(row[paired] + rng.normal(0, 0.05, int(paired.sum())), 0, 1)
    rows.append(mixes)
    weights = np.concatenate(rows).astype(np.float32)
    return weights[rng.permutation(len(weights))]


def sample_view(head_centre: np.ndarray, face_height: float, yaw_range: float, sampling: ViewSampling,
                rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(pose (4, 4) head -> camera, intrinsics (3, 3) of a FRAME_PX square footage)."""
    lens = math.exp(rng.uniform(math.log(sampling.lens_low_mm), math.log(sampling.lens_high_mm)))
    focal = lens / 36.0 * FRAME_PX
    depth = focal * face_height / (rng.uniform(sampling.face_low, sampling.face_high) * FRAME_PX)
    pixel = FRAME_PX / 2 + rng.uniform(-1, 1, 2) * sampling.position_spread * FRAME_PX
    intrinsics = np.array([[focal, 0, (FRAME_PX - 1) / 2], [0, focal, (FRAME_PX - 1) / 2], [0, 0, 1]])
    ray = np.linalg.solve(intrinsics, np.array([pixel[0], pixel[1], 1.0]))
    ray /= np.linalg.norm(ray)
    # The head's rotation relative to the line of sight, then turned onto the ray.
    relative = (_rotation(2, float(rng.normal(0, sampling.roll_sigma)))
                @ HEAD_TO_FRONT_CAMERA
                @ _rotation(0, rng.uniform(sampling.pitch_low, sampling.pitch_high))
                @ _rotation(2, rng.uniform(-yaw_range, yaw_range)))
    axis = np.cross([0, 0, 1.0], ray)
    angle = math.asin(min(np.linalg.norm(axis), 1.0))
    onto_ray = np.eye(3)
    if np.linalg.norm(axis) > 1e-9:
        k = axis / np.linalg.norm(axis)
        skew = np.array([[0, -k[2], k[1]], [k[2], 0, -k[0]], [-k[1], k[0], 0]])
        onto_ray = np.eye(3) + math.sin(angle) * skew + (1 - math.cos(angle)) * skew @ skew
    rotation = onto_ray @ relative
    pose = np.eye(4)
    pose[:3, :3] = rotation
    pose[:3, 3] = ray / ray[2] * depth - rotation @ head_centre
    return pose, intrinsics


def _light(rng: np.random.Generator) -> dict:
    """A key light from the camera's side (camera space) with random ambient and specular."""
    position = np.array([rng.uniform(-1, 1), rng.uniform(-1, 0.4), rng.uniform(-1.5, -0.2)])
    travels = -position / np.linalg.norm(position)
    return {"light_dir": tuple(float(v) for v in travels), "ambient": float(rng.uniform(0.15, 0.6)),
            "specular": float(rng.uniform(0.0, 0.5)), "shininess": float(rng.uniform(8, 48))}


@torch.no_grad()
def dam_codes(model: DeepAppearanceModel, vertices: torch.Tensor, batch: int = 64) -> np.ndarray:
    """(E, Z) the DAM encoder's mean code of head-space vertices (E, V, 3), with the model's
    mean texture (see the module's note)."""
    device = next(model.parameters()).device
    codes = []
    for start in range(0, len(vertices), batch):
        chunk = vertices[start:start + batch].to(device)
        texture = model.texture_mean.expand(len(chunk), -1, -1, -1)
        codes.append(model.encode(chunk, texture)[0].cpu())
    return torch.cat(codes).numpy().astype(np.float32)


def lab_renderer(head: HeadAsset, model: DeepAppearanceModel) -> LabRenderer:
    """The lab's renderer of the model's head (its albedo, its shapes)."""
    return LabRenderer(head, CaptureConfig(texture_size=model.config.texture_size), "cpu")


def make_views(head: HeadAsset, model: DeepAppearanceModel, weights: np.ndarray, views: int,
               crop_size: int, seed: int, out: Path, sink: EventSink, sampling: ViewSampling = ViewSampling(),
               yaw_range: float = 60.0, provenance: dict | None = None, detector: str = "mediapipe") -> Path:
    """Render `views` views of each expression (weights (E, K) on the head's shapes) into the
    views folder `out` (written beside it, renamed when complete), each with the landmarks
    `detector` finds on it."""
    if head.num_vertices != model.num_vertices:
        raise BadInput(f"the head has {head.num_vertices} vertices, the model {model.num_vertices}: "
                       "they are not the model's head")
    rng = np.random.default_rng(seed)
    lab = lab_renderer(head, model)
    centre, height = face_centre_and_height(head)
    landmark_vertex = torch.as_tensor(head.landmark_vertex)
    total = len(weights) * views
    partial = out.with_name(out.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    size = crop_size

    def open_array(name: str, shape: tuple, dtype: type) -> np.ndarray:
        return np.lib.format.open_memmap(partial / name, mode="w+", dtype=dtype, shape=shape)

    crops = open_array("crops.npy", (total, size, size, 3), np.uint8)
    masks = open_array("masks.npy", (total, size, size), np.uint8)
    poses = np.zeros((total, 4, 4), np.float32)
    intrinsics = np.zeros((total, 3, 3), np.float32)
    detected = np.zeros((total, 68, 2), np.float32)
    detected_found = np.zeros(total, bool)
    finder = create_detector(detector, video=False)
    expression = np.repeat(np.arange(len(weights)), views).astype(np.int64)
    # Renders go in groups sharing one light: a batched render costs little more than one.
    for begin in range(0, total, LIGHT_GROUP):
        group = range(begin, min(begin + LIGHT_GROUP, total))
        cams, ks = [], []
        for n in group:
            e = expression[n]
            with torch.no_grad():
                vertices = lab.vertices(torch.as_tensor(weights[e:e + 1]))[0].double()
            pose, footage_k = sample_view(centre, height, yaw_range, sampling, rng)
            cam = vertices @ torch.as_tensor(pose[:3, :3]).T + torch.as_tensor(pose[:3, 3])
            projected = cam[landmark_vertex] @ torch.as_tensor(footage_k).T
            points = (projected[:, :2] / projected[:, 2:]).numpy()
            points += rng.normal(0, sampling.landmark_sigma * height / pose[2, 3] * footage_k[0, 0],
                                 points.shape)
            box = box_from_landmarks(points, np.ones(len(points)))
            if box is None:
                raise RuntimeError(f"view {n}: the head's landmarks place no crop")
            side = box.side * math.exp(rng.normal(0, sampling.box_scale_sigma))
            shift = rng.normal(0, sampling.box_shift_sigma, 2) * box.side
            box = type(box)(box.cx + float(shift[0]), box.cy + float(shift[1]), side)
            k = crop_intrinsics(footage_k, box, size)
            cams.append(cam.float())
            ks.append(torch.as_tensor(k))
            poses[n], intrinsics[n] = pose, k
        with torch.no_grad():
            image, fragments = render_textured(torch.stack(cams), lab.faces, lab.uv, lab.uv_faces,
                                               lab.albedo, torch.stack(ks), size, size, **_light(rng))
        pixels = (image.clamp(0, 1) * 255).round().byte().numpy()
        crops[group.start:group.stop] = pixels
        masks[group.start:group.stop] = fragments.mask.numpy().astype(np.uint8) * 255
        for n, render in zip(group, pixels, strict=True):
            found = finder.detect(np.ascontiguousarray(render))
            detected[n], detected_found[n] = found.points, found.found
        sink.progress("render views", group.stop, total)
    finder.close()
    crops.flush()
    masks.flush()
    del crops, masks
    np.save(partial / "expression.npy", expression)
    np.save(partial / "poses.npy", poses)
    np.save(partial / "intrinsics.npy", intrinsics)
    np.save(partial / "detected.npy", detected)
    np.save(partial / "detected_found.npy", detected_found)
    np.save(partial / "weights.npy", weights.astype(np.float32))
    with torch.no_grad():
        all_vertices = lab.vertices(torch.as_tensor(weights, dtype=torch.float32))
    np.save(partial / "codes.npy", dam_codes(model, all_vertices))
    (partial / "views.json").write_text(json.dumps({
        "format": VIEWS_FORMAT, "views_per_expression": views, "count": total, "crop_size": size,
        "seed": seed, "sampling": asdict(sampling), "detector": detector,
        "detected_fraction": round(float(detected_found.mean()), 4), **(provenance or {})}, indent=1))
    if out.exists():
        shutil.rmtree(out)
    os.replace(partial, out)
    return out


@dataclass
class LabViews:
    """A views folder opened for training (arrays memory-mapped or small)."""

    crops: np.ndarray
    masks: np.ndarray
    expression: np.ndarray
    poses: np.ndarray
    intrinsics: np.ndarray
    detected: np.ndarray
    detected_found: np.ndarray
    weights: np.ndarray
    codes: np.ndarray
    info: dict

    @staticmethod
    def open(folder: Path) -> LabViews:
        info = json.loads((folder / "views.json").read_text())
        if info.get("format") != VIEWS_FORMAT:
            raise BadInput(f"{folder}: views format {info.get('format')}, expected {VIEWS_FORMAT}")

        def load(name: str, mmap: bool = False) -> np.ndarray:
            return np.load(folder / name, mmap_mode="r" if mmap else None, allow_pickle=False)

        return LabViews(load("crops.npy", True), load("masks.npy", True), load("expression.npy"),
                        load("poses.npy"), load("intrinsics.npy"), load("detected.npy"),
                        load("detected_found.npy"), load("weights.npy"), load("codes.npy"), info)
