"""The one tracker interface: what a tracker is given and what it returns for every frame.

A tracker is a `Tracker` subclass in a module of this package with one entry in the registry
(registry.py), which says what input it needs: landmarks detected by the detector the
settings name (`--detector`), the decoded frames, files of FACEADAPT_DATA. The pipeline
(backend/track.py) gives every tracker a `TrackerInput` holding what its entry asks for, checks
the `TrackerOutput` it returns against the shapes below, and writes every output the same way,
holding untracked frames from the nearest tracked one (untracked_frames.py).

Units: pixels of the source footage (0-based, pixel centres at integers); head space and
camera space in metres (DESIGN.md conventions); F frames, V head vertices, 68 iBUG landmarks.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from ..events import EventSink
from ..footage import Footage
from ..formats.errors import BadInput
from ..formats.head_file import HeadAsset
from ..formats.protocol import NUM_LANDMARKS


@dataclass
class Detections:
    """Landmarks of a clip, one row per frame: points (F, 68, 2) float32 pixels; confidence
    (F, 68) float32 in [0, 1], 0 for a missing point; found (F,) bool, a face seen."""

    points: np.ndarray
    confidence: np.ndarray
    found: np.ndarray


class ClipFrames:
    """The frames `first`..`last` (0-based, inclusive) of the footage as (H, W, 3) uint8 RGB,
    decoded anew on every pass, so no clip is ever held in memory whole; `decode_s` totals
    the decoding time of all passes (the pipeline reports it as its own stage)."""

    def __init__(self, footage: Footage, first: int, last: int) -> None:
        self.footage, self.first, self.last = footage, first, last
        self.decode_s = 0.0

    def __len__(self) -> int:
        return self.last - self.first + 1

    def __iter__(self) -> Iterator[np.ndarray]:
        start = time.perf_counter()
        for _, image in self.footage.frames(self.first, self.last):
            self.decode_s += time.perf_counter() - start
            yield image
            start = time.perf_counter()  # the consumer's time is not decoding


@dataclass
class TrackerInput:
    """What a tracker is given for one clip of `frame_count` frames of width x height pixels.

    detections: the clip's landmarks when the tracker's entry needs detections, else None.
    frames: the clip's frames when its entry needs frames, else None.
    data_files: the files of its entry's `data_files`, found in FACEADAPT_DATA, in that order.
    model_folder: the face model folder (`--model`) when its entry needs a model; `head` is
        then the model's head.
    clip_key: the stage-cache key of the clip's detections (footage, frame range, fps,
        detector: detection_cache.py), the root of the keys of a tracker's own cached stages;
        None: nothing is cached.
    sink: for its progress events (a stage name of its own), logs and warnings.
    """

    head: HeadAsset
    frame_count: int
    width: int
    height: int
    fps: float
    device: str
    sink: EventSink
    detections: Detections | None = None
    frames: ClipFrames | None = None
    data_files: tuple[Path, ...] = ()
    model_folder: Path | None = None
    clip_key: str | None = None


@dataclass
class TrackerOutput:
    """A tracker's per-frame result (F frames of the clip, V vertices of the head).

    vertices: (F, V, 3) float32, the head's vertices in head space, metres.
    head_pose: (F, 4, 4) float32, rigid, head space -> camera space (OpenCV axes, metres).
    intrinsics: (3, 3) float32, the camera in pixels (focal length fitted or assumed).
    landmarks: the landmarks the tracker followed, (F, 68, ...) as in Detections: the
        pipeline's detections, or the tracker's own when it reads the frames.
    landmarks_fit: (F, 68, 2) float32 pixels, the head's landmark vertices projected.
    residual_px: (F,) float32, mean pixel distance between fitted and followed landmarks over
        the points used; NaN where untracked.
    tracked: (F,) bool; the values of untracked frames are placeholders the pipeline
        replaces by the nearest tracked frame's.
    weights: (F, K) float32 in [0, 1] on the head's blendshapes, named (K,) in ARKit spelling
        by weight_names (fitted directly, or solved from decoded vertices); None without.
    latent: (F, Z) float32, the face model's code per frame (DAM trackers); None without.
    metrics: the tracker's own figures for result.json's "metrics" (name -> finite number).
    """

    vertices: np.ndarray
    head_pose: np.ndarray
    intrinsics: np.ndarray
    landmarks: Detections
    landmarks_fit: np.ndarray
    residual_px: np.ndarray
    tracked: np.ndarray
    weights: np.ndarray | None = None
    weight_names: tuple[str, ...] | None = None
    latent: np.ndarray | None = None
    metrics: dict[str, float] = field(default_factory=dict)

    def check(self, tracker: str, frame_count: int, vertex_count: int) -> None:
        """Raise ValueError naming the tracker and the field when the output breaks the shapes
        above or holds NaN/inf on a tracked frame (a tracker's bug, not the user's input)."""
        frames, landmarks = frame_count, NUM_LANDMARKS
        expected: dict[str, tuple[np.ndarray, tuple[int, ...]]] = {
            "vertices": (self.vertices, (frames, vertex_count, 3)),
            "head_pose": (self.head_pose, (frames, 4, 4)),
            "intrinsics": (self.intrinsics, (3, 3)),
            "landmarks.points": (self.landmarks.points, (frames, landmarks, 2)),
            "landmarks.confidence": (self.landmarks.confidence, (frames, landmarks)),
            "landmarks.found": (self.landmarks.found, (frames,)),
            "landmarks_fit": (self.landmarks_fit, (frames, landmarks, 2)),
            "residual_px": (self.residual_px, (frames,)),
            "tracked": (self.tracked, (frames,)),
        }
        if (self.weights is None) != (self.weight_names is None):
            raise ValueError(f"tracker {tracker}: weights and weight_names come together")
        if self.weights is not None and self.weight_names is not None:
            expected["weights"] = (self.weights, (frames, len(self.weight_names)))
        if self.latent is not None:
            expected["latent"] = (self.latent, (frames, self.latent.shape[-1]))
        for name, (array, shape) in expected.items():
            if array.shape != shape:
                raise ValueError(f"tracker {tracker}: {name} has shape {array.shape}, expected {shape}")
        if self.tracked.dtype != bool or self.landmarks.found.dtype != bool:
            raise ValueError(f"tracker {tracker}: tracked and landmarks.found must be bool")
        if not np.isfinite(self.intrinsics).all():
            raise ValueError(f"tracker {tracker}: intrinsics hold NaN or inf")
        for name, value in self.metrics.items():
            if not np.isfinite(value):
                raise ValueError(f"tracker {tracker}: metric {name} is {value}")
        for name, (array, _) in expected.items():
            per_frame = name not in ("intrinsics", "tracked", "landmarks.found")
            if per_frame and not np.isfinite(array[self.tracked]).all():
                raise ValueError(f"tracker {tracker}: {name} holds NaN or inf on a tracked frame")


class Tracker(ABC):
    """A tracker, made by its registry entry with its settings: an instance of `config_type`
    (a dataclass; None when the tracker has no settings), its defaults when none are given."""

    config_type: ClassVar[type | None] = None

    def __init__(self, config: Any = None) -> None:
        if self.config_type is None:
            if config is not None:
                raise BadInput(f"{type(self).__name__} takes no settings, got {config!r}")
        elif config is None:
            config = self.config_type()
        elif not isinstance(config, self.config_type):
            raise BadInput(f"{type(self).__name__} takes settings of type "
                           f"{self.config_type.__name__}, got {type(config).__name__}")
        self.config = config

    def settings(self) -> dict[str, Any]:
        """The settings as result.json records them (field name -> value)."""
        return {} if self.config is None else asdict(self.config)

    def open_model(self, spec: str) -> tuple[Path, HeadAsset]:
        """For trackers of a face model (registry `needs_model`): (model folder, the model's
        head) for `--model spec`, which the pipeline then tracks (face_model.py)."""
        raise NotImplementedError(f"{type(self).__name__} tracks no face model")

    def result_fields(self) -> dict[str, Any]:
        """Top-level fields the tracker adds to result.json."""
        return {}

    def write_files(self, folder: Path, tracking: Any, head: HeadAsset, texture_size: int, device: str,
                    sink: EventSink) -> dict[str, float]:
        """Files beyond the pipeline's, written into the results directory `folder` from the
        assembled tracking arrays (formats.results_dir.TrackingArrays); returns stage timings
        (seconds) for result.json."""
        return {}

    @abstractmethod
    def track(self, clip: TrackerInput) -> TrackerOutput:
        """Track the clip; see TrackerOutput for what each frame's output is."""
