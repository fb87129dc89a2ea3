"""The paper's tracker (`--tracker adapted`): detect -> crop -> encode -> adapt -> encode
again -> decode. The model's image encoder is adapted to the clip itself with no labels
(adaptation/adapt.py: texture consistency between consecutive frames, landmark reprojection,
appearance against the decoded texture through a per-clip colour transform, with a latent
prior, temporal smoothness and closeness to the unadapted prediction), together with the
clip's colour transform and its focal length; then every frame is encoded by the adapted
encoder (trackers/clip_optimisation.py writes the results).
"""

from __future__ import annotations

from ..adaptation.adapt import ClipFit, Prediction, adapt_encoder, predict
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
        return (predict(adapted.encoder, crops, clip.device, config.batch, clip.sink, "encode adapted"),
                adapted.fit)
