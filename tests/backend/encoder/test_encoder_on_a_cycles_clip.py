"""The shipped encoder on a short Cycles clip of the default head (rendered by Blender here, a
domain the lab renders never showed it): its vertex error must beat the neutral head's, the
error of not tracking the expression at all."""

from __future__ import annotations

from pathlib import Path

import pytest

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


@pytest.mark.skipif(not has_encoder(DEFAULT_MODEL), reason="the default model has no encoder")
def test_the_encoder_beats_the_neutral_head_on_a_cycles_clip(tmp_path: Path):
    sink = EventSink(json_lines=False)
    (clip,) = make_clips((CLIP,), tmp_path / "clips", 0, sink)
    results = run_track(TrackSettings(footage=clip / FOOTAGE, out=tmp_path / "encoder", tracker="encoder",
                                      texture_size=0), sink)
    _, encoder = evaluate_against_truth(results, clip, None)
    neutral = reference_on_clip(NEUTRAL, clip)
    assert encoder.frames == CLIP.frames
    assert encoder.vertex_mm_mean < 0.9 * neutral.errors.vertex_mm_mean
