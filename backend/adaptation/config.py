"""The adaptation's settings (`track --tracker adapted --adapt-...`), apart from its torch code
so the command line is built without importing torch. Validated when made: a bad setting is
refused before any frame is decoded."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

from ..config_parser import option
from ..formats.errors import BadInput

TERMS = ("texture", "landmark", "appearance", "prior", "smooth", "anchor")


@dataclass(frozen=True)
class AdaptationConfig:
    """How the encoder adapts to a clip (adaptation/adapt.py; docs/adaptation.md)."""

    passes: float = option(8.0, "adaptation passes: steps x frames per step / clip frames",
                           flag="--adapt-passes")
    pairs: int = option(8, "consecutive frame pairs per step", flag="--adapt-pairs")
    appearance_frames: int = option(4, "frames per step given L_A (a decoded texture costs most)",
                                    flag="--adapt-appearance-frames")
    learning_rate: float = option(3e-4, "the encoder's learning rate (Adam; the colour transform's and "
                                        "the focal length's are 100x)", flag="--adapt-learning-rate")
    frame_learning_rate: float = option(0.01, "the per-frame codes' and poses' learning rate (--tracker "
                                              "latent-fit, and the adapted tracker's refinement)",
                                        flag="--adapt-frame-learning-rate")
    texture_weight: float = option(1.0, "λT, texture consistency of consecutive frames",
                                   flag="--adapt-texture-weight")
    landmark_weight: float = option(1.0, "λL, landmark reprojection", flag="--adapt-landmark-weight")
    appearance_weight: float = option(1.0, "λA, appearance against the decoded texture",
                                      flag="--adapt-appearance-weight")
    prior_weight: float = option(0.001, "latent prior (the training codes' spread)",
                                 flag="--adapt-prior-weight")
    smooth_weight: float = option(1.0, "temporal smoothness of consecutive codes and poses",
                                  flag="--adapt-smooth-weight")
    anchor_weight: float = option(0.01, "closeness to the unadapted encoder's outputs",
                                  flag="--adapt-anchor-weight")
    texels: int = option(64, "UV atlas side of L_T and L_A (texels)", flag="--adapt-texels")
    shading_window: int = option(9, "L_A compares texture detail: the difference less its local mean "
                                    "over this many texels (0: the whole difference)",
                                 flag="--adapt-shading-window")
    shading_weight: float = option(0.1, "weight of the whole difference in L_A beside its detail",
                                   flag="--adapt-shading-weight")
    # 0 since the linear-landmark-code encoder (2026-12-04): refining on MediaPipe's points then
    # costs vertex error on every clip measured (docs/adaptation.md, "Refinement").
    refine_passes: float = option(0.0, "after adapting, each frame's code and pose refined on its landmarks "
                                       "for this many passes (0: none; --tracker adapted, and not "
                                       "with --adapt-landmark-weight 0)",
                                  flag="--adapt-refine-passes")
    fixed_focal: bool = option(False, "keep the assumed focal length instead of adapting it",
                               flag="--adapt-fixed-focal")
    seed: int = option(0, "seed of the pair sampling", flag="--adapt-seed")
    temporal_sigma: float = option(1.0, "Gaussian smoothing of the per-frame codes and poses over time, in "
                                        "frames, within runs of frames with a face (0: none)",
                                   flag="--adapt-temporal-sigma")

    def __post_init__(self) -> None:
        checks = [("--adapt-passes", self.passes, self.passes > 0, "positive"),
                  ("--adapt-refine-passes", self.refine_passes, self.refine_passes >= 0, "0 or more"),
                  ("--adapt-pairs", self.pairs, self.pairs >= 1, "at least 1"),
                  ("--adapt-appearance-frames", self.appearance_frames, self.appearance_frames >= 0,
                   "0 or more"),
                  ("--adapt-learning-rate", self.learning_rate, self.learning_rate > 0, "positive"),
                  ("--adapt-frame-learning-rate", self.frame_learning_rate, self.frame_learning_rate > 0,
                   "positive"),
                  ("--adapt-texels", self.texels, 8 <= self.texels <= 1024, "in 8..1024"),
                  ("--adapt-shading-window", self.shading_window, 0 <= self.shading_window < self.texels,
                   "0 or more, below --adapt-texels"),
                  ("--adapt-shading-weight", self.shading_weight, self.shading_weight >= 0, "0 or more"),
                  ("--adapt-temporal-sigma", self.temporal_sigma, 0 <= self.temporal_sigma <= 100,
                   "in 0..100 (frames)")]
        checks += [(f"--adapt-{name}-weight", getattr(self, f"{name}_weight"),
                    getattr(self, f"{name}_weight") >= 0, "0 or more") for name in TERMS]
        problems = [f"{flag} {value}: must be {rule}" for flag, value, ok, rule in checks
                    if not (ok and math.isfinite(value))]
        if problems:
            raise BadInput("adaptation settings: " + "; ".join(problems))

    def as_dict(self) -> dict:
        return asdict(self)

    def optimisation_settings(self) -> dict:
        """What the optimisation's result depends on: every setting but the smoothing applied to
        its outputs and the refinement after it (so another --adapt-temporal-sigma or
        --adapt-refine-passes reuses a cached adaptation)."""
        return {k: v for k, v in asdict(self).items() if k not in ("temporal_sigma", "refine_passes")}
