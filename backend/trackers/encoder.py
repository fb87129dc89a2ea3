"""The image encoder as a tracker (`--tracker encoder`): detect -> crop -> encode -> decode.

Per frame, from the pipeline's landmarks, a face crop (encoder/crop.py, cut once into a
memory-mapped crop folder: adaptation/clip_crops.py; crops and encoding are
stage-cached: face_model_stages.py) and those landmarks in crop pixels go
through the model's image encoder (a DAM code z and a crop-relative pose); the frozen DAM
decoder gives the vertices; the pose comes back to the footage camera through the crop camera
(encoder/crop_pose.py). The focal length is not observed by one crop: it is assumed
(`focal_factor` x the footage's longer side, the landmark fit's starting value). ARKit weights
are solved from the decoded vertices onto the head's shapes (arkit_solve.py), so the Blender
side can key its sliders; how far they are from the decoded vertices is reported.
A frame without a confident face is untracked (never invented).
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

from ..config_parser import option
from ..encoder.encoder_file import load_encoder
from ..formats.camera import centred_intrinsics
from .face_model import FaceModelTracker, check_face_model_settings, face_model_output
from .face_model_stages import crop_stage, encode_stage
from .interface import TrackerInput, TrackerOutput


@dataclass(frozen=True)
class EncoderTrackerConfig:
    """The encoder tracker's settings."""

    batch: int = option(32, "frames encoded at once")
    focal_factor: float = option(1.0, "assumed focal length, x the footage's longer side (pixels)")


class EncoderTracker(FaceModelTracker):
    config_type = EncoderTrackerConfig

    def track(self, clip: TrackerInput) -> TrackerOutput:
        config: EncoderTrackerConfig = self.config
        model_folder = check_face_model_settings("encoder", config.batch, config.focal_factor, clip)
        intrinsics = centred_intrinsics(config.focal_factor * max(clip.width, clip.height),
                                        clip.width, clip.height)
        encoder, _ = load_encoder(model_folder, clip.device)
        with tempfile.TemporaryDirectory(prefix="faceadapt-stages-") as work:
            crops, crops_key = crop_stage(clip, encoder.config.crop_size, Path(work))
            prediction, _ = encode_stage(encoder, model_folder, crops, crops_key, clip, config.batch,
                                         Path(work))
            return face_model_output(clip, crops, prediction, intrinsics)
