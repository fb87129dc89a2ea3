"""train-encoder end to end at a tiny size: it writes a loadable encoder with its
held-out metrics, and an interrupted run resumed from its checkpoint ends where an
uninterrupted one does."""

import json
import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from backend.dam.model_folder import model_id
from backend.encoder.encoder_file import ENCODER_INFO, ENCODER_WEIGHTS, load_encoder, save_encoder
from backend.encoder.linear_landmark_code import RIDGE_WEIGHTS
from backend.encoder.network import EncoderArchitecture, ImageEncoder
from backend.encoder.training import EncoderTraining, train_encoder
from backend.events import EventSink
from backend.formats.errors import BadInput

DEFAULT_MODEL = Path(__file__).parents[3] / "backend/models/default"
ARCHITECTURE = EncoderArchitecture(crop_size=64, width=8)
TRAINING = EncoderTraining(steps=4, landmark_steps=3, landmark_batch_size=8, batch_size=4, expressions=6,
                           views=2, evaluation_expressions=3, evaluation_views=2, checkpoint_every=2)


def _model(tmp_path: Path, name: str) -> Path:
    folder = tmp_path / name
    shutil.copytree(DEFAULT_MODEL, folder, ignore=shutil.ignore_patterns("encoder.*"))
    return folder


class _Interrupt(EventSink):
    """Stops training (as Ctrl-C does) once `after` steps are done."""

    def __init__(self, after: int) -> None:
        super().__init__(json_lines=False)
        self.after = after

    def progress(self, stage, done, total, **extra):
        if stage == "train encoder" and done > self.after:
            raise KeyboardInterrupt
        super().progress(stage, done, total, **extra)


def test_training_writes_an_encoder_with_held_out_metrics(tmp_path):
    model = _model(tmp_path, "model")
    train_encoder(model, tmp_path / "work", ARCHITECTURE, TRAINING, False,
                  EventSink(json_lines=False))
    info = json.loads((model / ENCODER_INFO).read_text())
    assert info["run"]["steps"] == 4 and info["run"]["landmark_steps"] == 3
    assert set(info["run"]["landmark_phase_losses"]["final"]) >= {"code", "vertex", "rotation"}
    assert info["reproduce"] == ("python -m backend train-encoder MODEL --steps 4 --landmark-steps 3 "
                                 "--landmark-batch-size 8 --batch-size 4 --expressions 6 --views 2 --seed 0 "
                                 "--checkpoint-every 2 --crop-size 64 --width 8 --landmark-code linear")
    for name in ("clean_vertex_mm", "augmented_vertex_mm", "clean_rotation_deg"):
        assert np.isfinite(info["metrics"][name])
    # The code's offset was calibrated over one view of every training expression, and the
    # held-out metrics before it are kept beside those after.
    calibration = info["run"]["code_bias_calibration"]
    assert calibration["views"] == TRAINING.expressions and calibration["shift_norm"] > 0
    assert set(calibration["held_out_before"]) == set(info["metrics"])
    assert calibration["held_out_before"] != info["metrics"]  # the encoder saved is the calibrated one
    encoder, _ = load_encoder(model)
    assert encoder.config.crop_size == 64
    assert (tmp_path / "work" / "augmentation.png").is_file()
    # Views are keyed by the DAM's weights, not the folder's path: a copy of the model reuses them.
    views = json.loads((tmp_path / "work" / "views" / "views.json").read_text())
    assert views["model"] == model_id(model)


@pytest.mark.parametrize("landmark_code", ["linear", "mlp"])
def test_a_resumed_training_ends_where_an_uninterrupted_one_does(tmp_path, landmark_code):
    architecture = replace(ARCHITECTURE, landmark_code=landmark_code)
    whole = _model(tmp_path, "whole")
    train_encoder(whole, tmp_path / "w1", architecture, TRAINING, False, EventSink(json_lines=False))
    resumed = _model(tmp_path, "resumed")
    with pytest.raises(KeyboardInterrupt):
        train_encoder(resumed, tmp_path / "w2", architecture, TRAINING, False, _Interrupt(2))
    assert not (resumed / ENCODER_INFO).exists()
    with pytest.raises(BadInput, match="--resume"):
        train_encoder(resumed, tmp_path / "w2", architecture, TRAINING, False,
                      EventSink(json_lines=False))
    train_encoder(resumed, tmp_path / "w2", architecture, TRAINING, True, EventSink(json_lines=False))
    a, a_info = load_encoder(whole)
    b, b_info = load_encoder(resumed)
    for (name, x), (_, y) in zip(a.state_dict().items(), b.state_dict().items(), strict=True):
        assert torch.equal(x, y), name
    # The closed-form fit is made once, before the interruption, and its record survives it.
    assert b_info["run"]["linear_landmark_code_fit"] == a_info["run"]["linear_landmark_code_fit"]
    assert (a_info["run"]["linear_landmark_code_fit"] is None) == (landmark_code == "mlp")


def test_too_few_expressions_for_a_batch_are_refused_before_rendering(tmp_path):
    model = _model(tmp_path, "model")
    with pytest.raises(BadInput, match="--expressions"):
        train_encoder(model, tmp_path / "work", ARCHITECTURE, replace(TRAINING, expressions=1), False,
                      EventSink(json_lines=False))
    assert not (tmp_path / "work" / "views").exists()


class _Warnings(EventSink):
    def __init__(self) -> None:
        super().__init__(json_lines=False)
        self.warnings: list[str] = []

    def warning(self, message: str) -> None:
        self.warnings.append(message)
        super().warning(message)


def test_a_landmark_phase_too_long_for_the_budget_leaves_the_image_phase_its_share(tmp_path):
    model = _model(tmp_path, "model")
    sink = _Warnings()
    budget = 4.0
    train_encoder(model, tmp_path / "work", ARCHITECTURE,
                  replace(TRAINING, landmark_steps=100_000, steps=3, budget=budget), False, sink)
    run = json.loads((model / ENCODER_INFO).read_text())["run"]
    assert 0 < run["landmark_steps"] < 100_000
    assert run["steps"] >= 1, run  # the image phase ran, inside the budget's remaining 40%
    assert run["landmark_phase_cut"]
    assert any("landmark phase used 60%" in w for w in sink.warnings), sink.warnings


def test_a_run_resumed_after_the_landmark_phase_was_cut_reports_the_steps_it_ran(tmp_path):
    model = _model(tmp_path, "model")
    training = replace(TRAINING, landmark_steps=100_000, steps=3, budget=10.0)
    with pytest.raises(KeyboardInterrupt):  # in the image phase, after a checkpoint at its step 2
        train_encoder(model, tmp_path / "work", ARCHITECTURE, training, False, _Interrupt(2))
    train_encoder(model, tmp_path / "work", ARCHITECTURE, training, True, EventSink(json_lines=False))
    run = json.loads((model / ENCODER_INFO).read_text())["run"]
    assert 0 < run["landmark_steps"] < 100_000 and run["landmark_phase_cut"], run


def test_a_linear_landmark_code_starts_from_its_closed_form_fit(tmp_path):
    model = _model(tmp_path, "model")
    train_encoder(model, tmp_path / "work", replace(ARCHITECTURE, landmark_code="linear"),
                  replace(TRAINING, expressions=24), False, EventSink(json_lines=False))
    info = json.loads((model / ENCODER_INFO).read_text())
    fit = info["run"]["linear_landmark_code_fit"]
    assert fit["ridge_weight"] in RIDGE_WEIGHTS and fit["held_out_code_error"] > 0
    encoder, _ = load_encoder(model)
    assert encoder.config.landmark_code == "linear" and info["reproduce"].endswith("--landmark-code linear")
    assert not torch.equal(encoder.landmark_mean, torch.zeros_like(encoder.landmark_mean))
    # The fitted normalisation is stored in full precision (the weights in half).
    stored = load_file(str(model / ENCODER_WEIGHTS))
    assert stored["landmark_mean"].dtype == torch.float32
    assert stored["code_from_landmarks.weight"].dtype == torch.float16


def test_a_warm_start_of_another_landmark_code_is_refused_naming_the_option(tmp_path):
    start = _model(tmp_path, "start")
    save_encoder(start, ImageEncoder(replace(ARCHITECTURE, landmark_code="mlp")), {})
    model = _model(tmp_path, "model")
    with pytest.raises(BadInput, match="--landmark-code mlp"):
        train_encoder(model, tmp_path / "work", ARCHITECTURE, TRAINING, False, EventSink(json_lines=False),
                      initial=start)
    assert not (tmp_path / "work" / "views").exists()  # refused before rendering
