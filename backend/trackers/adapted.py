"""The paper's tracker (`--tracker adapted`): detect -> crop -> encode -> adapt -> encode
again -> refine -> decode. The model's image encoder is adapted to the clip itself with no labels
(adaptation/adapt.py: texture consistency between consecutive frames, landmark reprojection,
appearance against the decoded texture through a per-clip colour transform, with a latent
prior, temporal smoothness and closeness to the unadapted prediction), together with the
clip's colour transform and its focal length; then every frame is encoded by the adapted
encoder, and, with `--adapt-refine-passes`, each frame's code and pose refined on its
landmarks from there (trackers/clip_optimisation.py writes the results).
"""

from __future__ import annotations

from dataclasses import replace

from ..adaptation.adapt import ClipFit, Prediction, adapt_encoder, fit_frames, predict
from ..adaptation.clip_crops import ClipCrops
from ..dam.model import DeepAppearanceModel
from ..encoder.network import ImageEncoder
from .clip_optimisation import ClipOptimisationConfig, ClipOptimisationTracker
from .interface import TrackerInput


class AdaptedTracker(ClipOptimisationTracker):
    method = "adapted"

    def optimise(self, encoder: ImageEncoder, dam: DeepAppearanceModel, clip: TrackerInput, crops: ClipCrops,
                 initial: Prediction, focal_px: float) -> tuple[Prediction, ClipFit]:
        config: ClipOptimisationConfig = self.config
        adapted = adapt_encoder(encoder, dam, clip.head, crops, clip.width, clip.height, focal_px,
                                config.adaptation, initial, clip.device, clip.sink)
        prediction = predict(adapted.encoder, crops, clip.device, config.batch, clip.sink, "encode adapted")
        return prediction, adapted.fit

    def optimisation_settings(self) -> dict:
        # The per-frame learning rate is the refinement's alone here (its stage's key).
        return {k: v for k, v in super().optimisation_settings().items() if k != "frame_learning_rate"}

    def refinement(self) -> dict | None:
        adaptation = self.config.adaptation
        if adaptation.refine_passes == 0 or adaptation.landmark_weight == 0:
            return None  # without L_L a refinement would only smooth
        return {"refine_passes": adaptation.refine_passes,
                "frame_learning_rate": adaptation.frame_learning_rate}

    def refine(self, encoder: ImageEncoder, dam: DeepAppearanceModel, clip: TrackerInput, crops: ClipCrops,
               start: Prediction, fit: ClipFit) -> tuple[Prediction, ClipFit]:
        # The adapted encoder shares what it learns across frames but, at this budget, leaves each
        # frame short of its landmarks; each frame's own code and pose then take the last step
        # (docs/adaptation.md, "Refinement"), with the focal length the adaptation found.
        adaptation = self.config.adaptation
        landmarks_only = replace(adaptation, passes=adaptation.refine_passes, texture_weight=0.0,
                                 appearance_weight=0.0, fixed_focal=True)
        refined = fit_frames(encoder, dam, clip.head, crops, clip.width, clip.height, fit.focal_px,
                             landmarks_only, start, clip.device, clip.sink, stage="refine",
                             warn_budget=False)
        return refined.prediction, refined.fit
