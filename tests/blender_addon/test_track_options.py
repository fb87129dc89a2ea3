"""The tracking panel's settings as backend arguments."""

from __future__ import annotations

import pytest

from faceadapt.blender_addon.backend_job import UserError
from faceadapt.blender_addon.track_options import PRESETS, TrackChoices, track_arguments


def test_presets_set_what_they_say():
    preview = track_arguments(TrackChoices("preview", "adapted", 512), "default", 5, 40)
    assert preview == ["--frames", "5-40", "--head", "default", "--tracker", "landmark-fit",
                       "--texture-size", "0"]
    production = track_arguments(TrackChoices("production", "landmark-fit", 0), "default", 0, 9)
    assert production[-4:] == ["--tracker", "adapted", "--texture-size", "512"]
    assert "no textures" in PRESETS["preview"].describe()


def test_custom_takes_the_advanced_settings_and_a_narrower_range():
    args = track_arguments(TrackChoices("custom", "encoder", 256, "actor", (10, 20)), "default", 5, 40)
    assert args == ["--frames", "10-20", "--head", "default", "--tracker", "encoder",
                    "--texture-size", "256", "--model", "actor"]


def test_a_range_outside_the_footage_is_refused():
    with pytest.raises(UserError, match="not within the footage's frames 5-40"):
        track_arguments(TrackChoices("preview", "", 0, "", (0, 10)), "default", 5, 40)


def test_a_head_of_another_file_is_fitted_by_landmarks_unless_a_model_is_chosen():
    for model in ("", "default"):
        args = track_arguments(TrackChoices("production", "", 0, model), "/heads/ict.npz", 0, 9)
        assert args[args.index("--tracker") + 1] == "landmark-fit" and "--model" not in args
    # A personal model's own head (added from <models>/actor/head.npz) tracked with that model.
    args = track_arguments(TrackChoices("production", "", 0, "actor"), "/heads/actor.npz", 0, 9)
    assert args[-6:] == ["--tracker", "adapted", "--texture-size", "512", "--model", "actor"]


def test_the_face_model_field_offers_the_personal_models(monkeypatch, tmp_path):
    from faceadapt.blender_addon.scene_settings import model_suggestions

    monkeypatch.setenv("FACEADAPT_MODELS", str(tmp_path))
    assert model_suggestions(None, None, "") == ["default"]  # no personal models yet
    for name in ("anna", "ben"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "model.json").write_text("{}")
    (tmp_path / "half-written").mkdir()  # no model.json: not a model
    assert model_suggestions(None, None, "") == ["default", "anna", "ben"]
    assert model_suggestions(None, None, "AN") == ["anna"]

