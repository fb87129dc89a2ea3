"""Per-frame latent optimisation (`--tracker latent-fit`): the comparison the paper's choice of
adapting the encoder must win. The adaptation's losses and budget are spent on each frame's
DAM code and pose directly (analysis by synthesis, as the per-frame trackers of the field do),
starting where the unadapted encoder does (adaptation/adapt.py, fit_frames).
"""

from __future__ import annotations

from ..adaptation.adapt import ClipFit, Prediction, fit_frames
from ..adaptation.clip_crops import ClipCrops
from ..dam.model import DeepAppearanceModel
from ..encoder.network import ImageEncoder
from .clip_optimisation import ClipOptimisationConfig, ClipOptimisationTracker
from .interface import TrackerInput


class LatentFitTracker(ClipOptimisationTracker):
    method = "latent-fit"

    def optimise(self, encoder: ImageEncoder, dam: DeepAppearanceModel, clip: TrackerInput, crops: ClipCrops,
                 initial: Prediction, focal_px: float) -> tuple[Prediction, ClipFit]:
        config: ClipOptimisationConfig = self.config
        fitted = fit_frames(encoder, dam, clip.head, crops, clip.width, clip.height, focal_px,
                            config.adaptation, initial, clip.device, clip.sink)
        return fitted.prediction, fitted.fit
