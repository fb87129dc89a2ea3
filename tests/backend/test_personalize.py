"""`personalize`: the budget's plan, the convergence report, where a model goes, the work
folder's refusals, and the whole command on a real clip at a tiny budget (interrupted,
resumed, listed by `models`, tracked with)."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from backend import personalize as personalize_module
from backend.dam.model_folder import DEFAULT_MODEL, list_models, model_destination
from backend.encoder.encoder_file import load_encoder
from backend.events import EventSink
from backend.formats.errors import BadInput
from backend.formats.head_file import HeadAsset, load_head, save_head
from backend.personalize import (
    DAM_SECONDS_PER_STEP,
    ENCODER_SECONDS_PER_STEP,
    MINIMUM_STEPS,
    REFERENCE_VERTICES,
    PersonalizeConfig,
    TrainingPlan,
    WorkFolder,
    personalize_report,
    run_personalize,
)
from backend.training_history import loss_curve, still_falling
from conftest import run_backend


def test_the_budget_buys_the_steps_the_reference_cpu_runs_in_it():
    plan = TrainingPlan.for_budget(600)
    assert plan.dam_budget + plan.encoder_budget == 600
    assert plan.dam_steps == round(plan.dam_budget / DAM_SECONDS_PER_STEP)
    assert plan.encoder_steps == round(plan.encoder_budget / ENCODER_SECONDS_PER_STEP)
    assert TrainingPlan.for_budget(1200).dam_steps == pytest.approx(2 * plan.dam_steps, abs=1)
    tiny = TrainingPlan.for_budget(1)
    assert tiny.dam_steps == tiny.encoder_steps == MINIMUM_STEPS


def test_a_head_of_more_vertices_gets_the_steps_its_slower_steps_fit_in_the_budget(default_head):
    assert default_head.num_vertices == REFERENCE_VERTICES  # the head the rates were measured on
    reference = TrainingPlan.for_budget(600)
    assert TrainingPlan.for_budget(600, REFERENCE_VERTICES) == reference
    # The ICT double (26,719 vertices): measured 310 DAM steps and 743 encoder steps in 300 s each.
    double = TrainingPlan.for_budget(600, 26_719)
    assert double.dam_steps == pytest.approx(310, rel=0.05), double
    assert double.encoder_steps == pytest.approx(743, rel=0.05), double
    small = TrainingPlan.for_budget(600, 500)
    assert reference.dam_steps < small.dam_steps <= 2 * reference.dam_steps + 1


def test_a_loss_still_falling_is_told_from_a_converged_one():
    history = [{"total": 1.0 / (1 + step)} for step in range(100)]
    curve = loss_curve(history)
    assert len(curve) == 10 and curve == sorted(curve, reverse=True)
    assert still_falling(curve) > 0.1  # 1/x still halves between the last two fifths
    assert still_falling([1.0, 0.5, 0.3, 0.2, 0.2, 0.2, 0.2, 0.2, 0.2, 0.2]) == 0.0
    assert still_falling([0.3, 0.2, 0.25, 0.3]) == 0.0  # rising: nothing left to gain
    assert still_falling([1.0, 0.5]) == 0.0 and loss_curve([]) == []


def _stages(dam_curve: list[float], stopped: bool) -> dict:
    evaluation = {"vertex_error_mm": {"mean": 1.0}, "rendered_psnr_db": 20.0}
    return {"identity": {"report": {"warnings": ["a frontal clip"]}, "seconds": 1, "peak_memory_mib": 1},
            "capture": {"config": {}, "seconds": 1, "peak_memory_mib": 1},
            "dam": {"training": {"steps": 40, "stopped_by_budget": stopped, "loss_curve": dam_curve},
                    "seconds": 1, "peak_memory_mib": 1},
            "encoder": {"run": {"steps": 40, "stopped_by_budget": False, "loss_curve": [1.0] * 10},
                        "seconds": 1, "peak_memory_mib": 1},
            "evaluate": {"personal": evaluation, "default": evaluation, "seconds": 1,
                         "peak_memory_mib": 1}}


def test_a_budget_too_small_to_converge_is_reported():
    config = PersonalizeConfig(footage=Path("actor.mp4"), out="actor", budget=60)
    plan = TrainingPlan.for_budget(60)
    falling = [1.0 / (1 + i) for i in range(10)]
    report = personalize_report(config, plan, _stages(falling, stopped=True))
    assert report["warnings"][0] == "a frontal clip"
    assert any("dam training had not converged" in w and "--budget (e.g. 120)" in w
               for w in report["warnings"])
    assert any("dam training reached the budget" in w for w in report["warnings"])
    assert not any("encoder" in w for w in report["warnings"])
    settled = personalize_report(config, plan, _stages([1.0] * 10, stopped=False))
    assert settled["warnings"] == ["a frontal clip"]
    assert settled["stages"]["dam"] == {"seconds": 1, "peak_memory_mib": 1} and settled["seconds"] == 5


def test_a_model_goes_to_the_users_models_folder_unless_a_path_is_given(monkeypatch, tmp_path):
    monkeypatch.setenv("FACEADAPT_MODELS", str(tmp_path / "models"))
    assert model_destination("anna") == tmp_path / "models" / "anna"
    assert model_destination("./anna") == Path("./anna")
    assert model_destination(str(tmp_path / "x")) == tmp_path / "x"
    for bad in ("default", " "):
        with pytest.raises(BadInput, match="name the model"):
            model_destination(bad)


def test_bad_settings_are_refused_before_any_work():
    with pytest.raises(BadInput, match="--budget"):
        PersonalizeConfig(footage=Path("a.mp4"), out="a", budget=0)
    with pytest.raises(BadInput, match="40 or more"):
        PersonalizeConfig(footage=Path("a.mp4"), out="a", expressions=10)
    with pytest.raises(BadInput, match="--shading-steps -1"):
        PersonalizeConfig(footage=Path("a.mp4"), out="a", shading_steps=-1)


def test_the_work_folder_refuses_what_it_cannot_continue(tmp_path):
    inputs = {"footage": "a.mp4", "seed": 0}
    work = WorkFolder(tmp_path / "work", inputs)
    with pytest.raises(BadInput, match="no run to continue"):
        work.start(resume=True)
    assert work.start(resume=False) == {}
    work.save({"identity": {"seconds": 1.0}})
    with pytest.raises(BadInput, match=r"unfinished personalize run .done: identity.*--resume"):
        WorkFolder(tmp_path / "work", inputs).start(resume=False)
    assert WorkFolder(tmp_path / "work", inputs).start(resume=True) == {"identity": {"seconds": 1.0}}
    with pytest.raises(BadInput, match=r"other inputs .seed differ"):
        WorkFolder(tmp_path / "work", {**inputs, "seed": 1}).start(resume=True)
    (tmp_path / "work" / "stages.json").write_text("{not json")
    with pytest.raises(BadInput, match="cannot be read"):
        WorkFolder(tmp_path / "work", inputs).start(resume=True)
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("the user's")
    with pytest.raises(BadInput, match="holds no personalize run"):
        WorkFolder(tmp_path / "mine", inputs).start(resume=False)
    assert (tmp_path / "mine" / "notes.txt").read_text() == "the user's"


class Interrupted(Exception):
    pass


def test_a_personal_model_is_made_resumed_listed_and_tracked_with(data_dir, monkeypatch, tmp_path):
    """The whole command on 60 frames of a real clip at a tiny budget: interrupted before its
    last stage and resumed (the finished stages are not run again), the model folder in the
    user's models, better than the default model on the actor's own held-out expressions, and
    `track --model NAME` runs with it."""
    monkeypatch.setenv("FACEADAPT_MODELS", str(tmp_path / "models"))
    config = PersonalizeConfig(footage=data_dir / "videos" / "lp_driving_d3.mp4", out="actor",
                               frames="0-59", budget=30, expressions=40, encoder_expressions=40,
                               sample_frames=30, identity_frames=8, albedo_size=128, shading_steps=20,
                               work=tmp_path / "work")
    evaluate = personalize_module._evaluate

    def interrupt(*args):
        raise Interrupted

    monkeypatch.setattr(personalize_module, "_evaluate", interrupt)
    with pytest.raises(Interrupted):
        run_personalize(config, EventSink(json_lines=False))
    done = json.loads((tmp_path / "work" / "stages.json").read_text())["stages"]
    assert list(done) == ["identity", "capture", "dam", "encoder"]
    assert not (tmp_path / "models" / "actor").exists()

    monkeypatch.setattr(personalize_module, "_evaluate", evaluate)
    with pytest.raises(BadInput, match="unfinished personalize run"):
        run_personalize(config, EventSink(json_lines=False))
    out, report = run_personalize(replace(config, resume=True), EventSink(json_lines=False))
    assert out == tmp_path / "models" / "actor" and not (tmp_path / "work").exists()
    for stage in ("identity", "capture", "dam", "encoder"):
        assert report["stages"][stage]["seconds"] == done[stage]["seconds"]  # not run again
    for name in ("dam", "encoder"):  # a budget this small may stop them early (reported)
        assert 0 < report["trainings"][name]["steps"] <= report["trainings"][name]["planned_steps"]
    lab = report["lab_evaluation"]
    print(json.dumps(lab))
    # The default model is another person's head and texture; a few dozen warm-started steps
    # already decode the actor's (0.27 vs 2.8 mm, 31.8 vs 15.0 dB on a 40-expression run).
    assert lab["personal"]["vertex_error_mm"] < 0.5 * lab["default"]["vertex_error_mm"]
    assert lab["personal"]["rendered_psnr_db"] > lab["default"]["rendered_psnr_db"] + 6

    entry = next(e for e in list_models() if e.name == "actor")
    assert entry.summary["dam"] and entry.summary["encoder"] and entry.summary["problems"] == []
    load_encoder(out)  # trained against these DAM weights (the digest matches)
    info = json.loads((out / "model.json").read_text())
    assert info["personalized"]["identity"]["frames_fitted"] and "vertex_error_mm" in info["metrics"]
    assert not np.allclose(np.load(out / "head.npz")["vertices"],
                           np.load(DEFAULT_MODEL / "head.npz")["vertices"])

    with pytest.raises(BadInput, match="already exists"):
        run_personalize(config, EventSink(json_lines=False))
    results = tmp_path / "results"
    tracked = run_backend("track", str(config.footage), "--out", str(results), "--frames", "0-4",
                          "--tracker", "encoder", "--model", "actor")
    assert tracked.returncode == 0, tracked.stderr
    assert json.loads((results / "result.json").read_text())["dam_model"]["path"] == str(out.resolve())


def _reordered_double(head: HeadAsset) -> tuple[HeadAsset, np.ndarray]:
    """(the head as a digital double of another topology: its vertices in reverse order, a darker
    skin, landmarks unplaced and no face region, as Blender's export writes it; the order)."""
    order = np.arange(head.num_vertices)[::-1].copy()
    position_of = np.argsort(order)
    double = HeadAsset(vertices=head.vertices[order], faces=position_of[head.faces], uv=head.uv,
                       uv_faces=head.uv_faces, blendshapes=head.blendshapes[:, order],
                       blendshape_names=list(head.blendshape_names),
                       landmark_vertex=np.zeros(68, np.int64), landmark_mask=np.zeros(68, bool),
                       face_region=np.zeros(head.num_vertices, bool),
                       albedo=(head.albedo * 0.6).astype(np.uint8))
    return double, order


def test_a_digital_double_round_trips_through_training(data_dir, default_head, monkeypatch, tmp_path):
    """A double of another topology (written as Blender's Make Model From Double writes it)
    becomes a model at a tiny budget: its landmarks placed where the default head's are, a face
    region derived, the DAM warm-started but for the layers sized by its vertex count, its own
    vertex order kept, and `track --model` runs with it."""
    monkeypatch.setenv("FACEADAPT_MODELS", str(tmp_path / "models"))
    double, order = _reordered_double(default_head)
    save_head(double, tmp_path / "double.npz")
    with pytest.raises(BadInput, match="drop --frames"):
        PersonalizeConfig(footage=tmp_path / "double.npz", out="double", frames="0-9")
    config = PersonalizeConfig(footage=tmp_path / "double.npz", out="double", budget=20,
                               expressions=40, encoder_expressions=40, work=tmp_path / "work")
    out, report = run_personalize(config, EventSink(json_lines=False))
    assert list(report["stages"]) == ["head", "capture", "dam", "encoder", "evaluate"]
    assert report["double"]["same_topology_as_default"] is False
    assert report["lab_evaluation"]["default"] is None  # the default model decodes another topology
    assert report["lab_evaluation"]["personal"]["vertex_error_mm"] < 2.0
    model_head = load_head(out / "head.npz")
    np.testing.assert_array_equal(model_head.vertices, double.vertices)  # the double's own order
    # The landmarks land where they land on the default head (the same surface, renumbered).
    placed = model_head.vertices[model_head.landmark_vertex[model_head.landmark_mask]]
    reference = default_head.vertices[default_head.landmark_vertex[model_head.landmark_mask]]
    assert np.median(np.linalg.norm(placed - reference, axis=1)) < 0.003
    face = model_head.face_region
    assert face[model_head.landmark_vertex].all()
    rearmost, top = np.argmax(model_head.vertices, axis=0)[1:]
    assert not face[rearmost] and not face[top]  # the back and the crown are not face
    assert (default_head.face_region[order] & face).sum() > 0.9 * default_head.face_region.sum()
    load_encoder(out)
    results = tmp_path / "results"
    tracked = run_backend("track", str(data_dir / "videos" / "lp_driving_d0.mp4"), "--out", str(results),
                          "--frames", "0-2", "--tracker", "encoder", "--model", "double")
    assert tracked.returncode == 0, tracked.stderr
    with np.load(results / "tracking.npz") as tracking:
        assert tracking["vertices"].shape == (3, *model_head.vertices.shape)


def test_a_double_without_texture_or_of_another_size_is_refused(default_head):
    from backend.heads.digital_double import prepare_double

    double, _ = _reordered_double(default_head)
    with pytest.raises(BadInput, match=r"no albedo.*Image Texture"):
        prepare_double(replace(double, albedo=None), "double.npz")
    with pytest.raises(BadInput, match=r"m tall.*scale"):
        prepare_double(replace(double, vertices=double.vertices * 100), "double.npz")
