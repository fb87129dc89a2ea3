"""The one tracker registry: name -> what the tracker is, what it needs, where its code is.

`track --tracker`, the pipeline (backend/track.py), the evaluation suite and docs/tracker.md
all read TRACKERS. Adding a tracker is a module in this package with a `Tracker` subclass
(interface.py) and one entry here. Importing this module loads no tracker: each is imported
when it is made, so listing trackers costs no torch or MediaPipe import.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..data_location import data_file
from ..formats.errors import BadInput

if TYPE_CHECKING:
    from .interface import Tracker


@dataclass(frozen=True)
class TrackerEntry:
    """One registered tracker.

    description: one line for --help, the docs and the suite's report.
    implementation: "module:Class" of its Tracker subclass inside this package.
    needs_detections: it is given landmarks from the detector the settings name (--detector).
    needs_frames: it is given the decoded frames themselves.
    data_files: files it needs under FACEADAPT_DATA (benchmark baselines' model bundles),
        given to it resolved, in this order.
    needs_model: it tracks with a face model folder (`--model`; its head comes with it, so
        `--head` does not apply), and its results carry a latent code per frame.
    """

    name: str
    description: str
    implementation: str
    needs_detections: bool
    needs_frames: bool
    data_files: tuple[str, ...] = ()
    needs_model: bool = False

    @property
    def module_file(self) -> str:
        """Its own module, relative to backend/ (e.g. for a hash of the tracker's code)."""
        return f"trackers/{self.implementation.split(':')[0]}.py"

    def needs(self) -> str:
        """What it needs, in words: 'detections (--detector), FACEADAPT_DATA/models/x.task'."""
        parts = [*(["detections (--detector)"] if self.needs_detections else []),
                 *(["the frames"] if self.needs_frames else []),
                 *(["a face model with an encoder (--model)"] if self.needs_model else []),
                 *(f"FACEADAPT_DATA/{path}" for path in self.data_files)]
        return ", ".join(parts)

    def tracker_class(self) -> type[Tracker]:
        """Its Tracker subclass (imports its module)."""
        module_name, class_name = self.implementation.split(":")
        module = importlib.import_module(f"{__package__}.{module_name}")
        return getattr(module, class_name)

    def create(self, config: Any = None) -> Tracker:
        """The tracker with `config` (its class's config_type; None: its defaults)."""
        return self.tracker_class()(config)

    def resolve_data_files(self) -> tuple[Path, ...]:
        """Its data files in FACEADAPT_DATA; BadInput naming the first one missing."""
        return tuple(data_file(path) for path in self.data_files)


# The trackers whose settings are track's own --adapt-* options (TrackSettings.adaptation).
ADAPTED_TRACKER, LATENT_FIT_TRACKER = "adapted", "latent-fit"
ADAPTATION_TRACKERS = (ADAPTED_TRACKER, LATENT_FIT_TRACKER)

TRACKERS: dict[str, TrackerEntry] = {entry.name: entry for entry in (
    TrackerEntry(
        name=ADAPTED_TRACKER,
        description="the paper's method: the face model's image encoder adapted to the clip with "
                    "no labels (texture consistency, landmarks, appearance), then as the encoder "
                    "(--adapt-refine-passes: each frame then refined on its landmarks)",
        implementation="adapted:AdaptedTracker",
        needs_detections=True, needs_frames=True, needs_model=True),
    TrackerEntry(
        name="landmark-fit",
        description="FaceAdapt's landmark-fitting tracker (MediaPipe landmarks, joint fit of "
                    "pose, ARKit weights and focal length over the clip)",
        implementation="landmark_fit:LandmarkFitTracker",
        needs_detections=True, needs_frames=False),
    TrackerEntry(
        name="mediapipe-blendshapes",
        description="MediaPipe Face Landmarker: its 52 blendshape scores on the head's ARKit "
                    "shapes and its transformation matrix as pose (what today's open-source "
                    "Blender face-capture add-ons do); a benchmark baseline",
        implementation="mediapipe_blendshapes:MediaPipeBlendshapesTracker",
        needs_detections=False, needs_frames=True,
        data_files=("models/face_landmarker.task",
                    "heads/mediapipe-canonical/face_model_with_iris.obj")),
    TrackerEntry(
        name="encoder",
        description="the face model's image encoder, unadapted: each frame's face crop -> DAM "
                    "code and head pose, vertices and view-dependent textures decoded by the DAM",
        implementation="encoder:EncoderTracker",
        needs_detections=True, needs_frames=True, needs_model=True),
    TrackerEntry(
        name=LATENT_FIT_TRACKER,
        description="per-frame latent optimisation: the adaptation's losses and budget on each "
                    "frame's DAM code and pose directly, from the unadapted encoder's (the comparison)",
        implementation="latent_fit:LatentFitTracker",
        needs_detections=True, needs_frames=True, needs_model=True),
)}
DEFAULT_TRACKER = ADAPTED_TRACKER


def tracker_names() -> tuple[str, ...]:
    """The registered trackers' names, the default first (the CLI's --tracker choices)."""
    return tuple(TRACKERS)


def tracker_descriptions() -> dict[str, str]:
    """Name -> one-line description of every registered tracker (what the suite compares)."""
    return {name: entry.description for name, entry in TRACKERS.items()}


def tracker_entry(name: str) -> TrackerEntry:
    """The entry of tracker `name`; BadInput listing the registered ones when there is none."""
    if name not in TRACKERS:
        raise BadInput(f"--tracker {name!r}: no such tracker; choose one of "
                       + ", ".join(TRACKERS))
    return TRACKERS[name]
