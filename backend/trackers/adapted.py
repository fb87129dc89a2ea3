"""The paper's tracker (`--tracker adapted`): detect -> crop -> encode -> adapt -> encode again
-> decode. The model's image encoder is adapted to the clip itself with no labels
(adaptation/adapt.py: texture consistency between consecutive frames, landmark reprojection,
appearance against the decoded texture through a per-clip colour transform, with a latent
prior, temporal smoothness and closeness to the unadapted prediction), together with the
clip's colour transform and its focal length; then every frame is encoded by the adapted
encoder and written as the encoder tracker writes it (trackers/encoder.py). result.json's
metrics carry the adaptation's steps, seconds, focal length and its loss terms over the first
and the last tenth of the steps; the colour transform is logged.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

from ..adaptation.adapt import adapt_encoder, predict
from ..adaptation.config import AdaptationConfig
from ..config_parser import nested, option
from ..dam.model_folder import load_model
from ..encoder.encoder_file import load_encoder
from ..formats.camera import centred_intrinsics
from .encoder import check_face_model_settings, clip_crops, face_model_output
from .face_model import FaceModelTracker
from .interface import TrackerInput, TrackerOutput


@dataclass(frozen=True)
class AdaptedTrackerConfig:
    """The adapted tracker's settings."""

    batch: int = option(32, "frames encoded at once (before and after adapting)")
    focal_factor: float = option(1.0, "starting focal length, x the footage's longer side (pixels)")
    adaptation: AdaptationConfig = nested(AdaptationConfig)


class AdaptedTracker(FaceModelTracker):
    config_type = AdaptedTrackerConfig

    def track(self, clip: TrackerInput) -> TrackerOutput:
        config: AdaptedTrackerConfig = self.config
        model_folder = check_face_model_settings("adapted", config.batch, config.focal_factor, clip)
        device, sink = clip.device, clip.sink
        focal = config.focal_factor * max(clip.width, clip.height)
        encoder, _ = load_encoder(model_folder, device)
        dam, _ = load_model(model_folder, device)
        with tempfile.TemporaryDirectory(prefix="faceadapt-crops-") as work:
            crops = clip_crops(clip, encoder.config.crop_size, Path(work) / "crops")
            initial = predict(encoder, crops, device, config.batch, sink, stage="encode")
            adapted = adapt_encoder(encoder, dam, clip.head, crops, clip.width, clip.height, focal,
                                    config.adaptation, initial, device, sink)
            prediction = predict(adapted.encoder, crops, device, config.batch, sink, stage="encode adapted")
            intrinsics = centred_intrinsics(adapted.focal_px, clip.width, clip.height)
            metrics = {"adaptation_steps": adapted.steps, "adaptation_s": round(adapted.seconds, 2),
                       "adaptation_used_texture_term": float(adapted.used_texture_term),
                       "adapted_focal_px": round(adapted.focal_px, 2),
                       **{f"adaptation_{name}_{when}": round(value, 5)
                          for when, terms in (("first", adapted.history[0]), ("last", adapted.history[-1]))
                          for name, value in terms.items()}}
            sink.log(f"adapted in {adapted.seconds:.0f} s ({adapted.steps} steps): focal "
                     f"{adapted.focal_px:.0f} px, "
                     f"colour matrix {adapted.colour_matrix.round(3).tolist()}, offset "
                     f"{adapted.colour_offset.round(3).tolist()}")
            return face_model_output(clip, crops, prediction, intrinsics, metrics)
