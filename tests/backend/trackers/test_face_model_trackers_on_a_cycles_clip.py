"""The face-model trackers on a short Cycles clip of the default head (rendered by Blender here,
a domain the lab renders never showed the encoder): the shipped encoder must beat the neutral
head (the error of not tracking the expression at all), and adapting it to the clip must lower
its error further."""

from __future__ import annotations

from pathlib import Path

import pytest

from backend.adaptation.config import AdaptationConfig
from backend.encoder.encoder_file import has_encoder
from backend.evaluation.clip_making import FOOTAGE, make_clips
from backend.evaluation.clip_specs import PROCEDURAL, ClipSpec, Domain
from backend.evaluation.evaluate import evaluate_against_truth
from backend.evaluation.yardsticks import NEUTRAL, reference_on_clip
from backend.events import EventSink
from backend.track import TrackSettings, run_track

DEFAULT_MODEL = Path(__file__).parents[3] / "backend/models/default"
CLIP = ClipSpec("encoder-check", "default", PROCEDURAL, 12,
                Domain(light="coloured", width=192, height=192, samples=8, noise=2.0))

pytestmark = pytest.mark.skipif(not has_encoder(DEFAULT_MODEL), reason="the default model has no encoder")


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    (made,) = make_clips((CLIP,), tmp_path_factory.mktemp("clips"), 0, EventSink(json_lines=False))
    return made


@pytest.fixture(scope="module")
def encoder_errors(clip: Path, tmp_path_factory: pytest.TempPathFactory):
    results = run_track(TrackSettings(footage=clip / FOOTAGE, out=tmp_path_factory.mktemp("e") / "encoder",
                                      tracker="encoder", texture_size=0), EventSink(json_lines=False))
    return evaluate_against_truth(results, clip, None)[1]


def test_the_encoder_beats_the_neutral_head_on_a_cycles_clip(clip: Path, encoder_errors):
    neutral = reference_on_clip(NEUTRAL, clip)
    assert encoder_errors.frames == CLIP.frames
    assert encoder_errors.vertex_mm_mean < 0.9 * neutral.errors.vertex_mm_mean


def _adapted_errors(clip: Path, out: Path, refine_passes: float):
    # 12 frames: more passes than a long clip needs, for enough steps (30) to move.
    settings = TrackSettings(footage=clip / FOOTAGE, out=out, tracker="adapted", texture_size=0,
                             adaptation=AdaptationConfig(passes=40, refine_passes=refine_passes))
    return evaluate_against_truth(run_track(settings, EventSink(json_lines=False)), clip, None)[1]


@pytest.fixture(scope="module")
def adapted_errors(clip: Path, tmp_path_factory: pytest.TempPathFactory):
    return _adapted_errors(clip, tmp_path_factory.mktemp("a") / "adapted", 0)  # unrefined


def test_adapting_the_encoder_to_the_clip_lowers_its_error(clip: Path, encoder_errors, adapted_errors):
    assert adapted_errors.frames == CLIP.frames
    print(f"vertex mm: encoder {encoder_errors.vertex_mm_mean:.3f}, "
          f"adapted {adapted_errors.vertex_mm_mean:.3f}")
    assert adapted_errors.vertex_mm_mean < encoder_errors.vertex_mm_mean - 0.02


def test_refining_each_frame_on_its_landmarks_brings_them_closer(clip: Path, adapted_errors, tmp_path: Path):
    refined = _adapted_errors(clip, tmp_path / "refined", 64)  # the default until 2026-12-04
    print(f"landmark px: adapted {adapted_errors.landmark_px_mean:.3f}, "
          f"refined {refined.landmark_px_mean:.3f}; "
          f"vertex mm {adapted_errors.vertex_mm_mean:.3f} -> {refined.vertex_mm_mean:.3f}")
    assert refined.frames == CLIP.frames
    assert refined.landmark_px_mean < adapted_errors.landmark_px_mean - 0.05
