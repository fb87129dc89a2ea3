"""`suite --quick` end to end: clips made in Blender, every method on every clip, the
report written; a second run resumes from what the first one kept."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from backend.evaluation.suite_methods import ABLATIONS
from backend.trackers.registry import TRACKERS
from conftest import run_backend

pytestmark = pytest.mark.blender


def test_quick_suite_scores_every_method_on_every_clip(tmp_path: Path, data_dir: Path):
    report = tmp_path / "report" / "suite.json"
    work = tmp_path / "work"
    done = run_backend("suite", "--quick", "--work", str(work), "--json", str(report),
                       timeout=1500)
    assert done.returncode == 0, done.stderr[-3000:]
    document = json.loads(report.read_text())
    kinds = {clip["kind"] for clip in document["clips"]}
    assert kinds == {"truth", "real", "photos"}
    names = {clip["name"] for clip in document["clips"]}
    ablations = {ablation.name for ablation in ABLATIONS}
    assert {m["name"] for m in document["methods"]} == set(TRACKERS) | ablations
    other_heads = {clip["name"] for clip in document["clips"]
                   if clip["kind"] == "truth" and clip["head"] != "default"}
    default_truth = {clip["name"] for clip in document["clips"]
                     if clip["kind"] == "truth" and clip["head"] == "default"}
    face_model = {name for name, entry in TRACKERS.items() if entry.needs_model} | ablations
    for method in document["methods"]:
        # A face-model tracker tracks its model's (the default) head: not applicable on the ICT
        # clip; the adaptation's ablations run on the ground-truth clips only.
        expected = (default_truth if method["name"] in ablations
                    else names - other_heads if method["name"] in face_model else names)
        assert set(method["clips"]) == expected
        for clip in document["clips"]:
            scores = method["clips"].get(clip["name"])
            if scores is None:
                continue
            if clip["kind"] == "truth":
                assert scores["frames"] + scores["frames_untracked"] + scores["frames_missing"] == 24
                assert 0 < scores["vertex_mm_mean"] < 10
                assert ("decoded_texture_psnr_db" in scores) == (method["name"] in face_model)
            elif clip["kind"] == "real":
                assert scores["agreement_nme_mean"] < 0.2 and scores["fraction_tracked"] > 0.9
            else:
                assert scores["photos_tracked"] == scores["photos"] == 5
    references = {row["name"]: row["clips"] for row in document["references"]}
    truth_clips = {clip["name"] for clip in document["clips"] if clip["kind"] == "truth"}
    default_clips = {clip["name"] for clip in document["clips"]
                     if clip["kind"] == "truth" and clip["head"] == "default"}
    oracles = ("dam-oracle", "landmark-oracle", "detection-oracle")
    assert set(references) == {"neutral", *oracles} and set(references["neutral"]) == truth_clips
    for oracle in oracles:
        assert default_clips and set(references[oracle]) == default_clips  # the DAM's own head
    for name in default_clips:
        scores = {row: references[row][name]["vertex_mm_mean"] for row in references}
        # Each oracle knows less than the one before it, and the true landmarks beat no expression.
        assert scores["dam-oracle"] < scores["landmark-oracle"] < scores["neutral"], scores
        assert scores["landmark-oracle"] < scores["detection-oracle"], scores
    markdown = report.with_suffix(".md").read_text()
    assert "quick-ict-d0-environment" in markdown and "mean (2 clips)" in markdown
    assert "neutral (reference)" in markdown
    pictures = sorted(p.name for p in report.parent.glob("*.png"))
    assert "suite_vertex_error_heatmap.png" in pictures
    assert not any("lp_driving" in name or "photo" in name for name in pictures)

    kept = {p: p.stat().st_mtime_ns for p in (work / "quick").rglob("result.json")}
    again = run_backend("suite", "--quick", "--work", str(work), "--json", str(report),
                        timeout=600)
    assert again.returncode == 0, again.stderr[-3000:]
    assert kept and all(p.stat().st_mtime_ns == t for p, t in kept.items())
    assert json.loads(report.read_text())["methods"] == document["methods"]
    assert json.loads(report.read_text())["references"] == document["references"]


def test_clips_are_chosen_by_name_and_an_unknown_one_is_refused_naming_the_set():
    from backend.evaluation.suite import chosen
    from backend.formats.errors import BadInput

    names = ["a-clip", "lp_driving_d0", "annotated-photos"]
    assert chosen(names, None) == set(names)
    assert chosen(names, "a-clip, annotated-photos") == {"a-clip", "annotated-photos"}
    with pytest.raises(BadInput, match=r"no clip named nope.*a-clip, lp_driving_d0"):
        chosen(names, "a-clip,nope")
