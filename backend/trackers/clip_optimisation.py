"""What the adaptation trackers share (`adapted`, `latent-fit`): detect -> crop -> encode ->
optimise the adaptation's losses over the clip (adaptation/adapt.py; the subclass says what is
optimised) -> refine, where the subclass does -> results, written as the encoder tracker writes
them (trackers/face_model.py). result.json's metrics carry the optimisation's steps, seconds,
focal length and loss terms over the first and the last tenth of the steps, and whether it came
from the stage cache (face_model_stages.py), as `adaptation_*`, and the refinement's as
`refine_*`; the colour transform is logged. The per-frame codes and poses are
smoothed over time (`--adapt-temporal-sigma`, temporal_smoothing.py) before they are decoded.
"""

from __future__ import annotations

import functools
import tempfile
from dataclasses import dataclass
from pathlib import Path

from ..adaptation.adapt import ClipFit, Prediction, budget_warnings
from ..adaptation.clip_crops import ClipCrops
from ..adaptation.config import AdaptationConfig
from ..config_parser import nested, option
from ..dam.model import DeepAppearanceModel
from ..dam.model_folder import load_model, model_id
from ..encoder.encoder_file import load_encoder
from ..encoder.network import ImageEncoder
from ..formats.camera import centred_intrinsics
from .face_model import FaceModelTracker, check_face_model_settings, face_model_output
from .face_model_stages import Optimised, crop_stage, encode_stage, optimise_stage
from .interface import TrackerInput, TrackerOutput


@dataclass(frozen=True)
class ClipOptimisationConfig:
    """The settings of a tracker that optimises the adaptation's losses over the clip."""

    batch: int = option(32, "frames encoded at once (before and after adapting)")
    focal_factor: float = option(1.0, "starting focal length, x the footage's longer side (pixels)")
    adaptation: AdaptationConfig = nested(AdaptationConfig)


class ClipOptimisationTracker(FaceModelTracker):
    """crop -> encode -> `optimise` (the subclass's) -> `refine` (where the subclass does) ->
    results, as the encoder tracker writes."""

    config_type = ClipOptimisationConfig
    method = ""

    def optimise(self, encoder: ImageEncoder, dam: DeepAppearanceModel, clip: TrackerInput, crops: ClipCrops,
                 initial: Prediction, focal_px: float) -> tuple[Prediction, ClipFit]:
        """The clip's optimised prediction and what the optimisation found, starting at the
        focal length focal_px."""
        raise NotImplementedError

    def optimisation_settings(self) -> dict:
        """What `optimise`'s result depends on of the adaptation's settings (they key its cached
        stage)."""
        return self.config.adaptation.optimisation_settings()

    def refinement(self) -> dict | None:
        """The settings of a refinement after `optimise` (JSON values: they key its cached stage),
        or None where the tracker does not refine (the default)."""
        return None

    def refine(self, encoder: ImageEncoder, dam: DeepAppearanceModel, clip: TrackerInput, crops: ClipCrops,
               start: Prediction, fit: ClipFit) -> tuple[Prediction, ClipFit]:
        """The refined prediction from the optimised one (`start`) and what the optimisation
        found; called where `refinement()` is not None."""
        raise NotImplementedError

    def track(self, clip: TrackerInput) -> TrackerOutput:
        config: ClipOptimisationConfig = self.config
        model_folder = check_face_model_settings(self.method, config.batch, config.focal_factor, clip)
        device, sink = clip.device, clip.sink
        encoder, _ = load_encoder(model_folder, device)
        focal = config.focal_factor * max(clip.width, clip.height)
        settings = {"method": self.method, "adaptation": self.optimisation_settings(),
                    "batch": config.batch,
                    "focal_px": focal, "dam": model_id(model_folder)}
        with tempfile.TemporaryDirectory(prefix="faceadapt-stages-") as work:
            crops, crops_key = crop_stage(clip, encoder.config.crop_size, Path(work))
            initial, encode_key = encode_stage(encoder, model_folder, crops, crops_key, clip, config.batch,
                                               Path(work))

            @functools.cache
            def dam() -> DeepAppearanceModel:  # loaded once, and only where a stage runs
                return load_model(model_folder, device)[0]

            def optimise() -> tuple[Prediction, ClipFit]:
                return self.optimise(encoder, dam(), clip, crops, initial, focal)

            optimised = optimise_stage("optimise", encode_key, settings, clip, len(crops), optimise, Path(work))
            fit, prediction = optimised.fit, optimised.prediction
            if optimised.reused:  # what the optimisation warned of when it ran, said again
                for warning in budget_warnings(crops.tracked, config.adaptation):
                    sink.warning(warning)
            sink.log(f"{self.method}: {fit.seconds:.0f} s ({fit.steps} steps"
                     f"{', from the stage cache' if optimised.reused else ''}): focal {fit.focal_px:.0f} px, "
                     f"colour matrix {fit.colour_matrix.round(3).tolist()}, offset "
                     f"{fit.colour_offset.round(3).tolist()}")
            focal_px = fit.focal_px
            metrics = {**_fit_metrics("adaptation", optimised), "adapted_focal_px": round(fit.focal_px, 2),
                       "adaptation_used_texture_term": float(fit.used_texture_term)}
            refinement = self.refinement()
            if refinement is not None:
                def refine() -> tuple[Prediction, ClipFit]:
                    return self.refine(encoder, dam(), clip, crops, optimised.prediction, fit)

                refined = optimise_stage("refine", optimised.key, refinement, clip, len(crops), refine,
                                         Path(work))
                # The refinement's own focal length (it holds the one it started from): so the
                # intrinsics always match the poses, even where a rebuilt adaptation differed.
                prediction, focal_px = refined.prediction, refined.fit.focal_px
                metrics.update(_fit_metrics("refine", refined))
                sink.log(f"refined each frame on the landmarks: {refined.fit.seconds:.0f} s "
                         f"({refined.fit.steps} steps{', from the stage cache' if refined.reused else ''})")
            intrinsics = centred_intrinsics(focal_px, clip.width, clip.height)
            return face_model_output(clip, crops, prediction, intrinsics, metrics,
                                     temporal_sigma=config.adaptation.temporal_sigma)


def _fit_metrics(name: str, optimised: Optimised) -> dict[str, int | float]:
    """result.json's figures of an optimisation stage, prefixed `name`: steps, seconds, whether
    it came from the cache, and the loss terms over the first and the last tenth of its steps."""
    fit = optimised.fit
    return {f"{name}_steps": fit.steps, f"{name}_s": round(fit.seconds, 2),
            f"{name}_reused": float(optimised.reused),
            **{f"{name}_{term}_{when}": round(value, 5)
               for when, terms in (("first", fit.history[0]), ("last", fit.history[-1]))
               for term, value in terms.items()}}
