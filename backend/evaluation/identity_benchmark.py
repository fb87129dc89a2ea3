"""`identity-benchmark`: how well `fit-identity` recovers known identities of the default head.

For each seed: a random identity of the default head (`random_identity`), a Cycles clip of it
turning up to 35 degrees (`make-benchmark`'s clip maker, kept between runs), `fit-identity` on
the clip, and the fitted rest shape's error against the truth beside the default head's: the
mean face-region distance after the best similarity (vertex to vertex, same topology) and the
NoW-style point-to-surface error (`identity_error.py`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..config_parser import nested, option, report_option, required
from ..events import EventSink
from ..formats.errors import BadInput
from ..formats.head_file import HeadAsset, load_head, save_head
from ..identity.identity_basis import IdentityBasis
from ..identity.identity_fit import IdentityFitConfig
from ..identity.personal_head import FitIdentityConfig, run_fit_identity
from ..similarity import aligned_distances
from .clip_making import FOOTAGE, make_clips
from .clip_specs import PROCEDURAL, ClipSpec, Domain
from .identity_error import identity_error_mm

CLIP_FRAMES = 16
CLIP_FPS = 4.0  # 16 frames span both sides of the procedural head turns
CLIP_YAW_DEG = 35.0
CLIP_DOMAIN = Domain(light="studio", width=256, height=256, samples=8, noise=2.0)


@dataclass(frozen=True)
class IdentityBenchmarkConfig:
    out: Path = required("folder for the identities, their clips and the fitted heads (kept between runs)")
    seeds: str = option("7,11,13,17,19,23", "comma-separated seeds of the random identities")
    identity_frames: int = option(16, "fit-identity's --identity-frames (the clips have 16)")
    detector_rounds: int = option(2, "fit-identity's --detector-rounds")
    fit: IdentityFitConfig = nested(IdentityFitConfig)
    json: Path | None = report_option()
    device: str = "cpu"

    def seed_list(self) -> list[int]:
        try:
            return [int(s) for s in self.seeds.split(",")]
        except ValueError:
            raise BadInput(f"--seeds {self.seeds!r}: expected comma-separated integers") from None


def random_identity(basis: IdentityBasis, seed: int) -> np.ndarray:
    """(N,) coefficients: every modifier uniform in half its range, the macro directions at
    their spread (normal, standard deviation 1)."""
    rng = np.random.default_rng(seed)
    c = np.clip(rng.uniform(-0.5, 0.5, basis.size), basis.lower, basis.upper)
    macro = np.array(basis.group) == "macro"
    c[macro] = rng.normal(0.0, 1.0, macro.sum())
    return c


def face_error_mm(fitted: HeadAsset, truth: HeadAsset) -> float:
    """Mean face-region distance (mm) of fitted to truth vertices (same topology) after the best
    similarity."""
    face = truth.face_region
    return float(aligned_distances(fitted.vertices[face].astype(np.float64),
                                   truth.vertices[face].astype(np.float64)).mean() * 1000)


def identity_benchmark(config: IdentityBenchmarkConfig, sink: EventSink) -> dict:
    from ..heads.default_head import default_head
    from ..identity.identity_basis import identity_basis

    seeds = config.seed_list()
    head, basis = default_head(), identity_basis()
    config.out.mkdir(parents=True, exist_ok=True)
    rows = []
    for seed in seeds:
        truth_path = config.out / f"identity-{seed}.npz"
        truth = basis.reshaped(head, random_identity(basis, seed))
        save_head(truth, truth_path)
        spec = ClipSpec(f"identity-{seed}", str(truth_path), PROCEDURAL, CLIP_FRAMES, CLIP_DOMAIN,
                        fps=CLIP_FPS, yaw_deg=CLIP_YAW_DEG)
        (clip,) = make_clips((spec,), config.out / "clips", 0, sink)
        start = time.perf_counter()
        fit_config = FitIdentityConfig(footage=clip / FOOTAGE, out=config.out / f"fitted-{seed}.npz",
                                       sample_frames=CLIP_FRAMES, identity_frames=config.identity_frames,
                                       detector_rounds=config.detector_rounds, overwrite=True,
                                       albedo_size=0, fit=config.fit, device=config.device)
        out, report = run_fit_identity(fit_config, sink)
        fitted = load_head(out)
        rows.append({"seed": seed, "default_mm": round(face_error_mm(head, truth), 3),
                     "fitted_mm": round(face_error_mm(fitted, truth), 3),
                     "default_now_mm": identity_error_mm(head, truth)["mean_mm"],
                     "fitted_now_mm": identity_error_mm(fitted, truth)["mean_mm"],
                     "residual_px": report["residual_px"]["mean"],
                     "seconds": round(time.perf_counter() - start, 1)})
        sink.log(f"identity {seed}: default head {rows[-1]['default_mm']:.2f} mm, fitted "
                 f"{rows[-1]['fitted_mm']:.2f} mm")
    mean = {key: round(float(np.mean([r[key] for r in rows])), 3)
            for key in ("default_mm", "fitted_mm", "default_now_mm", "fitted_now_mm")}
    return {"clips": rows, "mean": mean,
            "settings": {"detector_rounds": config.detector_rounds,
                         "identity_prior": config.fit.identity_prior,
                         "identity_frames": config.identity_frames}}
