"""The lab capture (DESIGN.md "The method", step 1): many expressions of one head, each seen by
a dome of calibrated cameras under fixed studio light with a specular term.

A capture directory holds what is expensive or defines the capture; per-view images and their
unwrapped textures are regenerated on the fly (deterministic) unless stored:

    capture.json          config, head topology hash, blendshape names, counts, format version
    head.npz              the head (DESIGN.md head-file schema)
    samples.npz           weights (N, K) f32; poses (N, C, 4, 4) f32 head -> camera (OpenCV);
                          intrinsics (3, 3) f32; held_out (N,) bool (evaluation expressions)
    average_texture.npy   (N, S, S, 3) uint8 view-averaged unwrapped texture (memory-mapped);
                          texels no view saw hold the albedo, lit as the seen ones
    average_coverage.npy  (N, S, S) uint8 number of views that saw each texel
    views/NNNNNN_CC.png   optional: images from another renderer (a Blender/Cycles capture of a
                          user's head); when present they replace the built-in renders
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from ..config_parser import option
from ..events import EventSink
from ..formats.atomic import DirectoryKind, atomic_directory, check_replaceable
from ..formats.camera import centred_intrinsics
from ..formats.errors import BadInput
from ..formats.head_file import HeadAsset, load_head, save_head
from ..formats.npz_arrays import read_npz
from ..head_space import HEAD_TO_FRONT_CAMERA
from ..render.brightness_match import brightness_matched
from ..render.camera import head_to_camera
from ..render.shading import render_textured
from ..render.unwrap import UVAtlas, make_atlas, unwrap

# 2: texels no view saw hold the albedo fill (LabRenderer.average); 1 (still read): they hold
# black, so a model trained on it leaves them unsupervised (`LabCapture.fills_unseen`).
CAPTURE_FORMAT = 2
READABLE_CAPTURE_FORMATS = (1, 2)
CAPTURE_DIRECTORY = DirectoryKind(
    "FaceAdapt lab capture", "capture.json", "format",
    frozenset({"capture.json", "head.npz", "average_texture.npy", "average_coverage.npy",
               "samples.npz", "views"}))
# Shapes that move together in real faces (names missing from a head are skipped).
CO_ACTIVATIONS = (
    {"mouthSmileLeft": 1.0, "mouthSmileRight": 1.0, "cheekSquintLeft": 0.5, "cheekSquintRight": 0.5},
    {"eyeBlinkLeft": 1.0, "eyeBlinkRight": 1.0},
    {"jawOpen": 0.8, "mouthFunnel": 0.7},
    {"jawOpen": 0.6, "mouthSmileLeft": 0.6, "mouthSmileRight": 0.6},
    {"browInnerUp": 1.0, "browOuterUpLeft": 0.8, "browOuterUpRight": 0.8, "eyeWideLeft": 0.5,
     "eyeWideRight": 0.5},
    {"browDownLeft": 1.0, "browDownRight": 1.0, "noseSneerLeft": 0.4, "noseSneerRight": 0.4},
    {"mouthPucker": 1.0, "jawOpen": 0.2},
    {"mouthFrownLeft": 1.0, "mouthFrownRight": 1.0, "mouthShrugLower": 0.6},
    {"mouthStretchLeft": 0.8, "mouthStretchRight": 0.8, "jawOpen": 0.3},
    {"jawOpen": 1.0},
)


@dataclass
class CaptureConfig:
    """What a capture is made of. Sizes in pixels/texels, distances in metres, angles in degrees."""

    expressions: int = option(2000, "expressions of the head, drawn by seed")
    cameras: int = option(8, "cameras per expression")
    image_size: int = option(256, "rendered image size (pixels)")
    texture_size: int = option(256, "unwrapped texture size (texels)")
    seed: int = option(0, "seed of expressions, cameras and the held-out split")
    held_out_fraction: float = option(0.05, "fraction of expressions kept for evaluate-model",
                                      flag="--held-out")
    yaw_range: float = 60.0
    pitch_low: float = -25.0
    pitch_high: float = 35.0
    distance_low: float = 0.45
    distance_high: float = 0.8
    face_fill: float = 0.75  # face height / image height at the nearest distance
    specular: float = 0.35
    shininess: float = 24.0
    ambient: float = 0.3
    light_dir_head: tuple[float, float, float] = (-0.4, 0.7, -0.6)  # direction light travels


def expression_weights(names: list[str], count: int, rng: np.random.Generator) -> np.ndarray:
    """(count, K) weights in [0, 1]: neutral, every shape alone at 1, co-activations at random
    intensities, and random sparse mixes of 1-5 shapes (the rest)."""
    k = len(names)
    index = {n: i for i, n in enumerate(names)}
    rows = [np.zeros(k)]
    rows += list(np.eye(k))
    groups = [{index[n]: w for n, w in g.items() if n in index} for g in CO_ACTIVATIONS]
    groups = [g for g in groups if g]
    for _ in range(min(len(groups) * 6, max(count - len(rows), 0) // 3)):
        group = groups[rng.integers(len(groups))]
        row = np.zeros(k)
        scale = rng.uniform(0.4, 1.0)
        for i, w in group.items():
            row[i] = w * scale
        rows.append(row)
    while len(rows) < count:
        row = np.zeros(k)
        active = rng.choice(k, size=rng.integers(1, 6), replace=False)
        row[active] = rng.uniform(0.2, 1.0, len(active))
        rows.append(row)
    weights = np.array(rows[:count], np.float32)
    return weights[rng.permutation(len(weights))]


def face_centre_and_height(head: HeadAsset) -> tuple[np.ndarray, float]:
    points = head.vertices[head.face_region]
    return points.mean(0), float(np.ptp(points[:, 2]))


def dome_poses(head: HeadAsset, config: CaptureConfig, count: int,
               rng: np.random.Generator) -> np.ndarray:
    """(count, 4, 4) head -> camera poses on the frontal hemisphere, looking at the face."""
    centre, _ = face_centre_and_height(head)
    poses = np.tile(np.eye(4), (count, 1, 1))
    for i in range(count):
        yaw = math.radians(rng.uniform(-config.yaw_range, config.yaw_range))
        pitch = math.radians(rng.uniform(config.pitch_low, config.pitch_high))
        distance = rng.uniform(config.distance_low, config.distance_high)
        spin = np.array([[math.cos(yaw), -math.sin(yaw), 0], [math.sin(yaw), math.cos(yaw), 0],
                         [0, 0, 1]])
        tilt = np.array([[1, 0, 0], [0, math.cos(pitch), -math.sin(pitch)],
                         [0, math.sin(pitch), math.cos(pitch)]])
        rotation = HEAD_TO_FRONT_CAMERA @ tilt @ spin
        poses[i, :3, :3] = rotation
        poses[i, :3, 3] = np.array([0, 0, distance]) - rotation @ centre
    return poses.astype(np.float32)


def capture_intrinsics(head: HeadAsset, config: CaptureConfig) -> np.ndarray:
    _, height = face_centre_and_height(head)
    focal = config.face_fill * config.image_size * config.distance_low / height
    return centred_intrinsics(focal, config.image_size, config.image_size)


class LabRenderer:
    """Renders and unwraps views of one head under the capture's studio light (batched)."""

    def __init__(self, head: HeadAsset, config: CaptureConfig, device: str = "cpu") -> None:
        self.head, self.config = head, config
        self.device = torch.device(device)
        self.faces = torch.as_tensor(head.faces, device=self.device)
        self.uv = torch.as_tensor(head.uv, device=self.device)
        self.uv_faces = torch.as_tensor(head.uv_faces, device=self.device)
        self.albedo = torch.as_tensor(head.albedo, device=self.device).permute(2, 0, 1).float() / 255
        self.atlas: UVAtlas = make_atlas(self.uv.cpu(), self.uv_faces.cpu(), self.faces.cpu(),
                                         config.texture_size).to(self.device)
        self.albedo_texels = self.atlas.texels_of(self.albedo)  # (3, N)
        self.intrinsics = torch.as_tensor(capture_intrinsics(head, config), device=self.device)
        self.blendshapes = torch.as_tensor(head.blendshapes, device=self.device)
        self.rest = torch.as_tensor(head.vertices, device=self.device)

    def vertices(self, weights: torch.Tensor) -> torch.Tensor:
        """(B, V, 3) head space from (B, K) weights."""
        return self.rest + torch.einsum("bk,kvc->bvc", weights, self.blendshapes)

    def render(self, vertices: torch.Tensor, poses: torch.Tensor) -> torch.Tensor:
        """(B, 3, S, S) images in [0, 1] of head-space vertices (B, V, 3) seen from poses (B, 4, 4)."""
        cam = head_to_camera(vertices, poses)
        light = torch.as_tensor(self.config.light_dir_head, dtype=torch.float32, device=self.device)
        # The light is fixed to the head; render_textured takes it in camera space. All views
        # of a batch share one direction only if they share a pose, so render one by one.
        images = []
        for b in range(len(cam)):
            light_cam = (poses[b, :3, :3] @ light).tolist()
            image, _ = render_textured(cam[b:b + 1], self.faces, self.uv, self.uv_faces, self.albedo,
                                       self.intrinsics, self.config.image_size, self.config.image_size,
                                       light_dir=tuple(light_cam), ambient=self.config.ambient,
                                       specular=self.config.specular, shininess=self.config.shininess)
            images.append(image)
        return torch.cat(images).permute(0, 3, 1, 2)

    def unwrap(self, images: torch.Tensor, vertices: torch.Tensor,
               poses: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(texture (B, 3, S, S), visibility (B, S, S)) of images through posed vertices."""
        return unwrap(images, head_to_camera(vertices, poses), self.intrinsics, self.faces, self.atlas)

    def average(self, texture: torch.Tensor, visible: torch.Tensor) -> torch.Tensor:
        """(3, S, S) the mean of one expression's unwrapped views (V, 3, S, S) where they saw a
        texel (visible (V, S, S)); texels no view saw (the neck below the dome, the eyes under
        the lids, a layout's hidden islands) take the head's albedo, scaled per channel to the
        seen texels' brightness under the lab light: the model learns them from that, not
        from black."""
        count = visible.sum(0)
        mean = (texture.sum(0) / count.clamp(min=1)).reshape(3, -1)
        index = self.atlas.texel_index
        seen = count.reshape(-1)[index] > 0
        texels = mean[:, index]
        texels[:, ~seen] = brightness_matched(self.albedo_texels, texels, seen)[:, ~seen]
        mean[:, index] = texels
        return mean.reshape(texture.shape[1:])


def view_directions(poses: torch.Tensor, centre: torch.Tensor) -> torch.Tensor:
    """(B, 3) unit vectors in head space from the face centre (3,) toward each camera."""
    rotation, translation = poses[:, :3, :3], poses[:, :3, 3]
    camera_centre = -(rotation.transpose(1, 2) @ translation[..., None])[..., 0]
    return torch.nn.functional.normalize(camera_centre - centre, dim=-1)


def make_capture(head: HeadAsset, config: CaptureConfig, out: Path, overwrite: bool,
                 sink: EventSink, device: str = "cpu") -> Path:
    """Generate the capture directory (atomically)."""
    if head.albedo is None:
        raise BadInput("the head has no albedo: a lab capture needs a textured head")
    if len(head.blendshapes) == 0:
        raise BadInput("the head has no blendshapes: nothing to capture")
    check_replaceable(Path(out), overwrite, CAPTURE_DIRECTORY)
    if not 0 <= config.held_out_fraction < 1:
        raise BadInput(f"--held-out {config.held_out_fraction} must be in [0, 1): the rest trains the model")
    rng = np.random.default_rng(config.seed)
    weights = expression_weights(head.blendshape_names, config.expressions, rng)
    poses = np.stack([dome_poses(head, config, config.cameras, rng) for _ in range(config.expressions)])
    held_out = rng.random(config.expressions) < config.held_out_fraction
    lab = LabRenderer(head, config, device)
    size = config.texture_size
    with atomic_directory(Path(out), overwrite, CAPTURE_DIRECTORY) as tmp:
        save_head(head, tmp / "head.npz")
        average = np.lib.format.open_memmap(tmp / "average_texture.npy", mode="w+", dtype=np.uint8,
                                            shape=(config.expressions, size, size, 3))
        coverage = np.lib.format.open_memmap(tmp / "average_coverage.npy", mode="w+", dtype=np.uint8,
                                             shape=(config.expressions, size, size))
        for i in range(config.expressions):
            w = torch.as_tensor(weights[i:i + 1], device=lab.device).expand(config.cameras, -1)
            p = torch.as_tensor(poses[i], device=lab.device)
            with torch.no_grad():
                vertices = lab.vertices(w)
                texture, visible = lab.unwrap(lab.render(vertices, p), vertices, p)
            mean = lab.average(texture, visible).permute(1, 2, 0)
            average[i] = (mean.clamp(0, 1) * 255).round().byte().cpu().numpy()
            coverage[i] = visible.sum(0).clamp(max=255).byte().cpu().numpy()
            sink.progress("capture", i + 1, config.expressions)
        average.flush()
        coverage.flush()
        del average, coverage
        np.savez(tmp / "samples.npz", weights=weights, poses=poses,
                 intrinsics=lab.intrinsics.cpu().numpy(), held_out=held_out)
        (tmp / "capture.json").write_text(json.dumps({
            "format": CAPTURE_FORMAT, "config": asdict(config), "topology_hash": head.topology_hash,
            "blendshape_names": head.blendshape_names, "expressions": config.expressions,
            "cameras_per_expression": config.cameras, "held_out": int(held_out.sum())},
            indent=1, allow_nan=False))
    return Path(out)


def _open_images(path: Path, remedy: str) -> np.ndarray:
    """A capture's .npy image stack, memory-mapped; never unpickled (an object array is refused)."""
    try:
        return np.load(path, mmap_mode="r", allow_pickle=False)
    except (OSError, ValueError, EOFError) as exc:
        raise BadInput(f"lab capture file {path} cannot be read as .npy ({exc}); {remedy}") from exc


@dataclass
class LabCapture:
    """A capture directory opened for training and evaluation."""

    directory: Path
    config: CaptureConfig
    head: HeadAsset
    weights: np.ndarray
    poses: np.ndarray
    held_out: np.ndarray
    average_texture: np.ndarray  # memory-mapped (N, S, S, 3) uint8
    average_coverage: np.ndarray  # memory-mapped (N, S, S) uint8
    fills_unseen: bool  # average_texture holds the albedo fill where no view saw a texel

    @staticmethod
    def open(directory: Path) -> LabCapture:
        directory = Path(directory)
        info_path = directory / "capture.json"
        if not info_path.is_file():
            raise BadInput(f"{directory} is not a lab capture (no capture.json); make one with "
                           "`python -m backend capture`")
        info = json.loads(info_path.read_text())
        if info.get("format") not in READABLE_CAPTURE_FORMATS:
            raise BadInput(f"{info_path}: capture format {info.get('format')}, this FaceAdapt "
                           f"reads {', '.join(map(str, READABLE_CAPTURE_FORMATS))}")
        config = CaptureConfig(**{**info["config"],
                                  "light_dir_head": tuple(info["config"]["light_dir_head"])})
        head = load_head(directory / "head.npz")
        if head.topology_hash != info["topology_hash"]:
            raise BadInput(f"{directory}/head.npz does not match capture.json's topology")
        remedy = "make the capture again with `python -m backend capture`"
        samples = read_npz(directory / "samples.npz", "lab capture file",
                           ("weights", "poses", "held_out"), remedy)
        return LabCapture(directory, config, head, samples["weights"], samples["poses"],
                          samples["held_out"], _open_images(directory / "average_texture.npy", remedy),
                          _open_images(directory / "average_coverage.npy", remedy),
                          info["format"] >= 2)

    def stored_view(self, sample: int, camera: int) -> Path | None:
        """An image from another renderer for this view, when the capture has one."""
        path = self.directory / "views" / f"{sample:06d}_{camera:02d}.png"
        return path if path.is_file() else None
