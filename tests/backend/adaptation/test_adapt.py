"""The adaptation loop's bookkeeping on a tiny crop folder: which frames it uses, what a
one-frame clip does, and that the encoder it was given is left as it was."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from backend.adaptation.adapt import adapt_encoder, consecutive_pairs, fit_frames, predict
from backend.adaptation.clip_crops import ClipCrops
from backend.adaptation.config import AdaptationConfig
from backend.dam.model_folder import load_model, load_model_head
from backend.encoder.encoder_file import has_encoder, load_encoder
from backend.formats.errors import BadInput

DEFAULT_MODEL = Path(__file__).parents[3] / "backend/models/default"
pytestmark = pytest.mark.skipif(not has_encoder(DEFAULT_MODEL), reason="the default model has no encoder")


class Sink:
    def __init__(self) -> None:
        self.warnings: list[str] = []
        self.stages: set[str] = set()

    def progress(self, stage, done, total, values=None):
        self.stages.add(stage)

    def log(self, message):
        pass

    def warning(self, message):
        self.warnings.append(message)


def _crops(tmp_path: Path, tracked: list[bool]) -> ClipCrops:
    """A crop folder of random crops with a plausible face's landmarks (a 128-pixel crop)."""
    rng = np.random.default_rng(0)
    count = len(tracked)
    folder = tmp_path / "crops"
    folder.mkdir()
    np.save(folder / "crops.npy", rng.integers(0, 255, (count, 128, 128, 3), dtype=np.uint8))
    face = np.stack([np.linspace(34, 94, 68), 40 + 50 * np.abs(np.sin(np.linspace(0, 6, 68)))], 1)
    np.save(folder / "landmarks.npy", np.repeat(face[None], count, 0).astype(np.float32))
    np.save(folder / "confidence.npy", np.outer(tracked, np.ones(68)).astype(np.float32))
    np.save(folder / "similarity.npy", np.tile(np.eye(3, dtype=np.float32), (count, 1, 1)))
    np.save(folder / "tracked.npy", np.array(tracked))
    return ClipCrops.open(folder)


@pytest.fixture(scope="module")
def model():
    encoder, _ = load_encoder(DEFAULT_MODEL, "cpu")
    dam, _ = load_model(DEFAULT_MODEL, "cpu")
    return encoder, dam, load_model_head(DEFAULT_MODEL)


def test_pairs_are_consecutive_frames_that_both_have_a_face():
    assert consecutive_pairs(np.array([True, True, False, True, True, True])).tolist() == [0, 3, 4]


def test_a_one_frame_clip_adapts_without_the_texture_term_and_says_so(model, tmp_path: Path):
    encoder, dam, head = model
    crops = _crops(tmp_path, [True])
    before = [p.detach().clone() for p in encoder.parameters()]
    sink = Sink()
    config = AdaptationConfig(passes=2, pairs=2, appearance_frames=1, texels=32, shading_window=5)
    initial = predict(encoder, crops, "cpu")
    adapted = adapt_encoder(encoder, dam, head, crops, 256, 256, 256.0, config, initial, "cpu", sink)
    assert not adapted.fit.used_texture_term and any("L_T" in w for w in sink.warnings)
    assert adapted.fit.steps == 1 and adapted.fit.history[-1]["texture"] == 0.0
    assert adapted.fit.history[-1]["landmark"] > 0 and "adapt" in sink.stages
    assert all(torch.equal(a, b) for a, b in zip(before, encoder.parameters(), strict=True))
    assert any(not torch.equal(a, b) for a, b in zip(before, adapted.encoder.parameters(), strict=True))


def test_frames_without_a_face_are_never_adapted_on_and_a_faceless_clip_is_refused(model, tmp_path: Path):
    encoder, dam, head = model
    crops = _crops(tmp_path, [True, True, False, False])
    initial = predict(encoder, crops, "cpu")
    assert np.all(initial.z[2:] == 0) and np.any(initial.z[:2] != 0)
    config = AdaptationConfig(passes=4, pairs=1, appearance_frames=1, texels=32, shading_window=5)
    adapted = adapt_encoder(encoder, dam, head, crops, 256, 256, 256.0, config, initial, "cpu", Sink())
    assert adapted.fit.used_texture_term and adapted.fit.steps == 4  # 4 passes x 2 faces / 2 frames a step
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(BadInput, match="no frame of the clip has a confident face"):
        adapt_encoder(encoder, dam, head, _crops(empty, [False, False]), 256, 256, 256.0, config,
                      initial, "cpu", Sink())


def test_a_clip_too_short_for_the_budget_says_so(model, tmp_path: Path):
    encoder, dam, head = model
    crops = _crops(tmp_path, [True] * 4)
    initial = predict(encoder, crops, "cpu")
    config = AdaptationConfig(passes=8, pairs=1, appearance_frames=0, texels=16, shading_window=3)
    short = Sink()
    adapted = adapt_encoder(encoder, dam, head, crops, 256, 256, 256.0, config, initial, "cpu", short)
    assert adapted.fit.steps == 16
    assert any("16 adaptation step(s)" in w and "--adapt-passes 10 gives 20" in w for w in short.warnings)
    enough = Sink()
    adapt_encoder(encoder, dam, head, crops, 256, 256, 256.0, replace(config, passes=10), initial, "cpu",
                  enough)
    assert not any("--adapt-passes" in w for w in enough.warnings)


def test_the_per_frame_fit_moves_the_frames_with_a_face_and_no_other(model, tmp_path: Path):
    encoder, dam, head = model
    crops = _crops(tmp_path, [True, True, False])
    initial = predict(encoder, crops, "cpu")
    config = AdaptationConfig(passes=4, pairs=1, appearance_frames=1, texels=32, shading_window=5)
    fitted = fit_frames(encoder, dam, head, crops, 256, 256, 256.0, config, initial, "cpu", Sink())
    moved = np.abs(fitted.prediction.z - initial.z).max(1)
    assert moved[0] > 0 and moved[1] > 0 and moved[2] == 0
    assert np.allclose(fitted.prediction.rotation[2], initial.rotation[2], atol=1e-6)


def test_the_per_frame_fit_holds_the_poses_or_the_codes_when_told(model, tmp_path: Path):
    encoder, dam, head = model
    crops = _crops(tmp_path, [True, True])
    initial = predict(encoder, crops, "cpu")
    config = AdaptationConfig(passes=4, pairs=1, appearance_frames=1, texels=32, shading_window=5)
    codes_only = fit_frames(encoder, dam, head, crops, 256, 256, 256.0, config, initial, "cpu", Sink(),
                            free_poses=False)
    assert np.abs(codes_only.prediction.z - initial.z).max() > 0
    for name in ("rotation", "uv", "scale"):
        np.testing.assert_allclose(getattr(codes_only.prediction, name), getattr(initial, name), atol=1e-6)
    held = fit_frames(encoder, dam, head, crops, 256, 256, 256.0, config, initial, "cpu", Sink(),
                      free_codes=False, free_poses=False)
    np.testing.assert_allclose(held.prediction.z, initial.z, atol=1e-6)
    for name in ("rotation", "uv", "scale"):
        np.testing.assert_allclose(getattr(held.prediction, name), getattr(initial, name), atol=1e-6)
    assert held.fit.steps == codes_only.fit.steps == 4


def test_bad_settings_are_refused_before_any_work():
    with pytest.raises(BadInput, match=r"--adapt-passes 0\.0: must be positive"):
        AdaptationConfig(passes=0.0)
    with pytest.raises(BadInput, match=r"--adapt-texture-weight -1\.0"):
        AdaptationConfig(texture_weight=-1.0)
    with pytest.raises(BadInput, match=r"--adapt-temporal-sigma -1\.0: must be in 0\.\.100"):
        AdaptationConfig(temporal_sigma=-1.0)
    with pytest.raises(BadInput, match=r"--adapt-refine-passes -1\.0: must be 0 or more"):
        AdaptationConfig(refine_passes=-1.0)


def test_the_output_smoothing_and_the_refinement_are_not_part_of_what_the_optimisation_depends_on():
    settings = AdaptationConfig(temporal_sigma=3.0).optimisation_settings()
    assert "temporal_sigma" not in settings and "refine_passes" not in settings
    assert settings == AdaptationConfig(temporal_sigma=0).optimisation_settings()
    assert AdaptationConfig(passes=2).optimisation_settings() != AdaptationConfig().optimisation_settings()
    refined = AdaptationConfig(refine_passes=8)  # keys the refine stage instead (face_model_stages.py)
    assert refined.optimisation_settings() == AdaptationConfig().optimisation_settings()
