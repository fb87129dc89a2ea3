"""The ground-truth clip's files: what the head performs and what a tracker should recover.

A rendered clip (blender_addon/render_clip.py, `make-benchmark`, `demo`) is made from a
`performance.npz` and writes a `truth.npz` beside its frames:

performance.npz  weights (F, K) f32 in [0, 1], weight_names (K,) str, head_motion (F, 4, 4) f64
                 (rigid, head space -> world, the rest head's space, metres), fps () f64,
                 optional source () str (where it came from)
truth.npz        frames (F,) i64, vertices (F, V, 3) f32 head space, head_pose (F, 4, 4) f32
                 head space -> OpenCV camera, intrinsics (3, 3) f32, weights (F, K) f32 with
                 weight_names (K,), landmarks_2d (F, 68, 2) f32 (every landmark vertex projected,
                 masked or not), fps, width, height
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .atomic import atomic_file
from .errors import BadInput
from .npz_arrays import read_npz
from .protocol import NUM_LANDMARKS

# The domains a clip can be rendered in (render_clip --light, --background, --occluder; clip
# specs): light rigs, surroundings, and what partly covers the face.
RENDER_LIGHTS = ("coloured", "studio", "hard", "environment", "window", "neon")
RENDER_BACKGROUNDS = ("room", "plain", "world")
RENDER_OCCLUDERS = ("none", "glasses", "hand")
REMAKE_PERFORMANCE = "write it again (evaluation.performances)"
REMAKE_CLIP = "render the clip again (make-benchmark)"
PERFORMANCE_FILE = "performance.npz"
TRUTH_FILE = "truth.npz"
PERFORMANCE_KEYS = ("weights", "weight_names", "head_motion", "fps")
TRUTH_KEYS = ("frames", "vertices", "head_pose", "intrinsics", "weights", "weight_names",
              "landmarks_2d", "fps", "width", "height")


def _positive_scalar(value: np.ndarray, integer: bool = False) -> float | None:
    """A 0-d array as a positive finite number (an integer where `integer`), else None."""
    if value.shape != () or value.dtype.kind not in ("iu" if integer else "iuf"):
        return None
    number = value.item()
    return number if np.isfinite(number) and number > 0 else None


@dataclass(frozen=True)
class Performance:
    """What a head does in a rendered clip: weights (F, K) float32 in [0, 1] on `weight_names`
    (K,); head_motion (F, 4, 4) float64, rigid, head space -> world; fps; source says where it
    came from (for clip.json)."""

    weight_names: tuple[str, ...]
    weights: np.ndarray
    head_motion: np.ndarray
    fps: float
    source: str = ""

    @property
    def frames(self) -> int:
        return len(self.weights)

    def save(self, path: Path) -> Path:
        with atomic_file(Path(path)) as tmp, open(tmp, "wb") as handle:
            np.savez(handle, weights=self.weights.astype(np.float32),
                     weight_names=np.array(self.weight_names, dtype=str),
                     head_motion=self.head_motion.astype(np.float64), fps=np.float64(self.fps),
                     source=np.array(self.source))
        return Path(path)

    def on_channels(self, channels: list[str] | tuple[str, ...]) -> np.ndarray:
        """Weights (F, len(channels)) on a head's channels (those the performance leaves out
        stay 0); BadInput when it drives a channel the head lacks."""
        unknown = sorted(set(self.weight_names) - set(channels))
        if unknown:
            raise BadInput(f"the performance ({self.source or 'performance file'}) drives channels "
                           f"the head lacks: {', '.join(unknown[:5])}")
        weights = np.zeros((self.frames, len(channels)), np.float32)
        for column, name in enumerate(self.weight_names):
            weights[:, list(channels).index(name)] = self.weights[:, column]
        return weights


def load_performance(path: Path) -> Performance:
    """Read and check performance.npz; BadInput naming the file and the problem."""
    arrays = read_npz(Path(path), "performance file", PERFORMANCE_KEYS, REMAKE_PERFORMANCE)
    weights = np.asarray(arrays["weights"], np.float32)
    names = tuple(str(n) for n in arrays["weight_names"])
    motion = np.asarray(arrays["head_motion"], np.float64)
    fps = _positive_scalar(arrays["fps"])
    frames = len(weights)
    if weights.ndim != 2 or frames < 1 or weights.shape != (frames, len(names)):
        raise BadInput(f"performance file {path}: weights must be (F, K) with F >= 1 and K = "
                       f"{len(names)} names, got {weights.shape}")
    if motion.shape != (frames, 4, 4) or not np.isfinite(motion).all():
        raise BadInput(f"performance file {path}: head_motion must be finite ({frames}, 4, 4), "
                       f"got {motion.shape}")
    if not (np.isfinite(weights).all() and weights.min() >= 0 and weights.max() <= 1):
        raise BadInput(f"performance file {path}: weights must be finite and in [0, 1]")
    if fps is None:
        raise BadInput(f"performance file {path}: fps must be a positive number, got {arrays['fps']}")
    source = str(arrays["source"]) if "source" in arrays else ""
    return Performance(names, weights, motion, float(fps), source)


@dataclass(frozen=True)
class Truth:
    """What a tracker should recover from a rendered clip (shapes in the module docstring)."""

    frames: np.ndarray
    vertices: np.ndarray
    head_pose: np.ndarray
    intrinsics: np.ndarray
    weights: np.ndarray
    weight_names: tuple[str, ...]
    landmarks_2d: np.ndarray
    fps: float
    width: int
    height: int

    def save(self, path: Path) -> Path:
        with atomic_file(Path(path)) as tmp, open(tmp, "wb") as handle:
            np.savez(handle, frames=self.frames.astype(np.int64),
                     vertices=self.vertices.astype(np.float32),
                     head_pose=self.head_pose.astype(np.float32),
                     intrinsics=self.intrinsics.astype(np.float32),
                     weights=self.weights.astype(np.float32),
                     weight_names=np.array(self.weight_names, dtype=str),
                     landmarks_2d=self.landmarks_2d.astype(np.float32), fps=np.float64(self.fps),
                     width=np.int64(self.width), height=np.int64(self.height))
        return Path(path)

    def as_arrays(self) -> dict[str, np.ndarray]:
        """The arrays by their truth.npz names (what the metrics take)."""
        return {"frames": self.frames, "vertices": self.vertices, "head_pose": self.head_pose,
                "intrinsics": self.intrinsics, "weights": self.weights,
                "weight_names": np.array(self.weight_names, dtype=str),
                "landmarks_2d": self.landmarks_2d, "fps": np.float64(self.fps),
                "width": np.int64(self.width), "height": np.int64(self.height)}


def load_truth(path: Path) -> Truth:
    """Read and check truth.npz (or the truth.npz in a clip folder); BadInput naming the file
    and the field it refuses."""
    path = Path(path)
    if path.is_dir():
        path = path / TRUTH_FILE
    a = read_npz(path, "ground truth", TRUTH_KEYS, REMAKE_CLIP)
    if a["frames"].ndim != 1 or a["frames"].dtype.kind not in "iu":
        raise BadInput(f"ground truth {path}: field 'frames' must be (F,) integer frame indices, "
                       f"got {a['frames'].shape} {a['frames'].dtype}")
    scalars = {"fps": _positive_scalar(a["fps"]), "width": _positive_scalar(a["width"], True),
               "height": _positive_scalar(a["height"], True)}
    for key, number in scalars.items():
        if number is None:
            raise BadInput(f"ground truth {path}: field '{key}' must be a positive number, "
                           f"got {a[key]}")
    frames = len(a["frames"])
    expected = {"vertices": (frames, None, 3), "head_pose": (frames, 4, 4), "intrinsics": (3, 3),
                "weights": (frames, len(a["weight_names"])),
                "landmarks_2d": (frames, NUM_LANDMARKS, 2)}
    for key, shape in expected.items():
        got = a[key].shape
        if len(got) != len(shape) or any(s is not None and s != g for s, g in zip(shape, got, strict=True)):
            raise BadInput(f"ground truth {path}: field '{key}' must be {shape}, got {got}")
        if not np.isfinite(a[key]).all():
            raise BadInput(f"ground truth {path}: field '{key}' contains NaN or inf")
    return Truth(frames=a["frames"].astype(np.int64), vertices=a["vertices"].astype(np.float32),
                 head_pose=a["head_pose"].astype(np.float32),
                 intrinsics=a["intrinsics"].astype(np.float32),
                 weights=a["weights"].astype(np.float32),
                 weight_names=tuple(str(n) for n in a["weight_names"]),
                 landmarks_2d=a["landmarks_2d"].astype(np.float32), fps=float(scalars["fps"]),
                 width=int(scalars["width"]), height=int(scalars["height"]))
