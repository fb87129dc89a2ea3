"""The paper's tracker (`--tracker adapted`): detect -> crop -> encode -> adapt -> encode
again -> decode; and its comparison (`--tracker latent-fit`).

`adapted`: the model's image encoder is adapted to the clip itself with no labels
(adaptation/adapt.py: texture consistency between consecutive frames, landmark reprojection,
appearance against the decoded texture through a per-clip colour transform, with a latent
prior, temporal smoothness and closeness to the unadapted prediction), together with the
clip's colour transform and its focal length; then every frame is encoded by the adapted
encoder and written as the encoder tracker writes it (trackers/encoder.py).
`latent-fit` spends the same losses and budget on each frame's code and pose directly
(analysis by synthesis, as the per-frame trackers of the field do), starting where the
encoder does. result.json's metrics carry the optimisation's steps, seconds, focal length and
loss terms over the first and the last tenth of the steps; the colour transform is logged.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

from ..adaptation.adapt import Adapted, FittedFrames, Prediction, adapt_encoder, fit_frames, predict
from ..adaptation.clip_crops import ClipCrops
from ..adaptation.config import AdaptationConfig
from ..config_parser import nested, option
from ..dam.model import DeepAppearanceModel
from ..dam.model_folder import load_model
from ..encoder.encoder_file import load_encoder
from ..encoder.network import ImageEncoder
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
    method = "adapted"

    def optimise(self, encoder: ImageEncoder, dam: DeepAppearanceModel, clip: TrackerInput, crops: ClipCrops,
                 initial: Prediction) -> tuple[Prediction, Adapted | FittedFrames]:
        """The clip's adapted prediction and what the optimisation found."""
        config: AdaptedTrackerConfig = self.config
        focal = config.focal_factor * max(clip.width, clip.height)
        adapted = adapt_encoder(encoder, dam, clip.head, crops, clip.width, clip.height, focal,
                                config.adaptation, initial, clip.device, clip.sink)
        return predict(adapted.encoder, crops, clip.device, config.batch, clip.sink, "encode adapted"), adapted

    def track(self, clip: TrackerInput) -> TrackerOutput:
        config: AdaptedTrackerConfig = self.config
        model_folder = check_face_model_settings(self.method, config.batch, config.focal_factor, clip)
        device, sink = clip.device, clip.sink
        encoder, _ = load_encoder(model_folder, device)
        dam, _ = load_model(model_folder, device)
        with tempfile.TemporaryDirectory(prefix="faceadapt-crops-") as work:
            crops = clip_crops(clip, encoder.config.crop_size, Path(work) / "crops")
            initial = predict(encoder, crops, device, config.batch, sink, stage="encode")
            prediction, fit = self.optimise(encoder, dam, clip, crops, initial)
            intrinsics = centred_intrinsics(fit.focal_px, clip.width, clip.height)
            metrics = {"adaptation_steps": fit.steps, "adaptation_s": round(fit.seconds, 2),
                       "adaptation_used_texture_term": float(fit.used_texture_term),
                       "adapted_focal_px": round(fit.focal_px, 2),
                       **{f"adaptation_{name}_{when}": round(value, 5)
                          for when, terms in (("first", fit.history[0]), ("last", fit.history[-1]))
                          for name, value in terms.items()}}
            sink.log(f"{self.method}: {fit.seconds:.0f} s ({fit.steps} steps): focal {fit.focal_px:.0f} px, "
                     f"colour matrix {fit.colour_matrix.round(3).tolist()}, offset "
                     f"{fit.colour_offset.round(3).tolist()}")
            return face_model_output(clip, crops, prediction, intrinsics, metrics)


class LatentFitTracker(AdaptedTracker):
    """The per-frame latent optimisation (`--tracker latent-fit`): the adaptation's losses and
    budget on free per-frame codes and poses starting at the unadapted encoder's, no network
    adapted (adaptation/adapt.py, fit_frames)."""

    method = "latent-fit"

    def optimise(self, encoder: ImageEncoder, dam: DeepAppearanceModel, clip: TrackerInput, crops: ClipCrops,
                 initial: Prediction) -> tuple[Prediction, Adapted | FittedFrames]:
        config: AdaptedTrackerConfig = self.config
        focal = config.focal_factor * max(clip.width, clip.height)
        fitted = fit_frames(encoder, dam, clip.head, crops, clip.width, clip.height, focal, config.adaptation,
                            initial, clip.device, clip.sink)
        return fitted.prediction, fitted
