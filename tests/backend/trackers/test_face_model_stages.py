"""The face-model trackers' stage cache (crop -> encode -> optimise -> refine,
face_model_stages.py): a
re-run with other settings redoes only the stages whose inputs changed, reuses give the same
results, and an entry that does not load is rebuilt. Run with the seeded untrained encoder
(conftest.untrained_encoder_model): plumbing, not accuracy."""

from __future__ import annotations

import io
import json
from dataclasses import replace
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pytest

from backend.adaptation.config import AdaptationConfig
from backend.events import EventSink
from backend.formats import protocol
from backend.track import TrackSettings, run_track

CLIP = "videos/lp_driving_d0.mp4"
STAGES = ("crop", "encode", "optimise", "refine")
ADAPTATION = AdaptationConfig(passes=2, texels=32, shading_window=5, refine_passes=64)


class Run(NamedTuple):
    document: dict  # result.json
    arrays: dict[str, np.ndarray]  # tracking.npz
    reused: set[str]  # the stages taken from the cache
    warnings: list[str]


def _run(data_dir: Path, out: Path, model: Path, **settings) -> Run:
    """The adapted tracker on frames 0-3 of CLIP unless `settings` say otherwise."""
    stream = io.StringIO()
    options = {"tracker": "adapted", "texture_size": 0, "adaptation": ADAPTATION, "frames": "0-3", **settings}
    run_track(TrackSettings(footage=data_dir / CLIP, out=out, model=str(model), **options),
              EventSink(json_lines=True, out=stream))
    events = [e for e in map(protocol.parse_event_line, stream.getvalue().splitlines()) if e]
    logs = [e["message"] for e in events if e["event"] == "log"]
    reused = {stage for stage in STAGES if any(m.startswith(f"{stage}: from the stage cache") for m in logs)}
    with np.load(out / "tracking.npz") as tracking:
        arrays = {k: tracking[k] for k in tracking.files}
    return Run(json.loads((out / "result.json").read_text()), arrays, reused,
               [e["message"] for e in events if e["event"] == "warning"])


@pytest.mark.data
def test_a_rerun_redoes_only_the_stages_whose_inputs_changed(data_dir, untrained_encoder_model, tmp_path,
                                                             monkeypatch):
    cache = tmp_path / "cache"
    monkeypatch.setenv("FACEADAPT_CACHE", str(cache))
    model = untrained_encoder_model

    first, t1, reused, warnings = _run(data_dir, tmp_path / "r1", model)
    assert reused == set() and first["metrics"]["adaptation_reused"] == 0
    entries = {stage: list((cache / "stages" / "face-model" / stage).iterdir()) for stage in STAGES}
    assert all(len(found) == 1 for found in entries.values()), entries
    assert not any(p.name.startswith(".") for found in entries.values() for p in found[0].parent.iterdir())

    # Another texture size: every stage reused, the same results.
    second, t2, reused, warnings_again = _run(data_dir, tmp_path / "r2", model, texture_size=16)
    assert reused == set(STAGES) and second["metrics"]["adaptation_reused"] == 1
    for name in ("vertices", "head_pose", "latent", "intrinsics", "landmarks_fit"):
        np.testing.assert_array_equal(t1[name], t2[name], err_msg=name)
    assert second["metrics"]["refine_reused"] == 1
    assert second["metrics"]["adaptation_steps"] == first["metrics"]["adaptation_steps"]
    # 4 frames, 2 passes: one step, then 64 refinement passes, 16 steps. The budget is said on the
    # run that adapted and again on the one that reused it; the refinement adds no warning.
    assert (first["metrics"]["adaptation_steps"], first["metrics"]["refine_steps"]) == (1, 16)
    assert any("--adapt-passes" in w for w in warnings) and warnings_again == warnings
    assert len(warnings) == 1, warnings

    # Another smoothing of the outputs: the adaptation itself is reused, the outputs differ.
    unsmoothed = replace(ADAPTATION, temporal_sigma=0)
    _, smoothed, reused, _ = _run(data_dir, tmp_path / "r2b", model, adaptation=unsmoothed)
    assert reused == set(STAGES) and not np.array_equal(smoothed["latent"], t1["latent"])

    # Another refinement budget: the adaptation reused, the refinement redone from it.
    more = replace(ADAPTATION, refine_passes=32)
    _, more_refined, reused, _ = _run(data_dir, tmp_path / "r2c", model, adaptation=more)
    assert reused == {"crop", "encode", "optimise"}
    assert not np.array_equal(more_refined["latent"], t1["latent"])
    # The per-frame learning rate is the refinement's alone in this tracker.
    slower = replace(ADAPTATION, frame_learning_rate=0.002)
    _, slower_refined, reused, _ = _run(data_dir, tmp_path / "r2d", model, adaptation=slower)
    assert reused == {"crop", "encode", "optimise"}
    assert not np.array_equal(slower_refined["latent"], t1["latent"])

    # Another adaptation setting: the crops and the unadapted encoding reused, the adaptation redone.
    _, t3, reused, _ = _run(data_dir, tmp_path / "r3", model, adaptation=AdaptationConfig(
        passes=8, texels=32, shading_window=5))  # 2 steps, not 1
    assert reused == {"crop", "encode"}
    assert not np.array_equal(t1["latent"], t3["latent"])

    # Without the landmark term there is nothing to refine on: no refine stage, no refine figures.
    no_landmarks = replace(ADAPTATION, landmark_weight=0)
    unrefined, _, reused, _ = _run(data_dir, tmp_path / "r3b", model, adaptation=no_landmarks)
    assert unrefined["metrics"]["adaptation_steps"] == 1 and "refine_steps" not in unrefined["metrics"]
    assert reused == {"crop", "encode"}

    # Another tracker of the same model: the crops and encoding are the encoder tracker's too.
    _, _, reused, _ = _run(data_dir, tmp_path / "r4", model, tracker="encoder")
    assert reused == {"crop", "encode"}

    # Another frame range: nothing reused.
    _, _, reused, _ = _run(data_dir, tmp_path / "r5", model, frames="1-3")
    assert reused == set()

    # An entry that does not load is rebuilt, with the same result: the adaptation (the refinement
    # after it, keyed by its key, is reused) ...
    adapted = entries["optimise"][0] / "prediction.npz"
    with np.load(adapted) as entry:
        before = {k: entry[k] for k in entry.files}
    adapted.write_bytes(b"truncated")
    _, t6, reused, _ = _run(data_dir, tmp_path / "r6", model)
    assert reused == {"crop", "encode", "refine"}
    with np.load(adapted) as entry:
        for name, array in before.items():
            np.testing.assert_array_equal(entry[name], array, err_msg=name)
    np.testing.assert_array_equal(t6["latent"], t1["latent"])
    # ... and the refinement.
    (entries["refine"][0] / "fit.json").write_text("{")
    _, t7, reused, _ = _run(data_dir, tmp_path / "r7", model)
    assert reused == {"crop", "encode", "optimise"}
    np.testing.assert_array_equal(t7["latent"], t1["latent"])
    _, _, reused, _ = _run(data_dir, tmp_path / "r8", model)
    assert reused == set(STAGES)


@pytest.mark.data
def test_without_a_writable_cache_the_stages_run_in_a_temporary_folder(data_dir, untrained_encoder_model,
                                                                       tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    cache.write_bytes(b"")  # a file where the cache folder should be: nothing can be written under it
    monkeypatch.setenv("FACEADAPT_CACHE", str(cache))
    document, tracking, reused, _ = _run(data_dir, tmp_path / "r", untrained_encoder_model)
    assert reused == set() and document["metrics"]["frames_tracked"] == 4
    assert np.isfinite(tracking["latent"]).all()
