"""What the model-making operators share, checked before any backend runs (the operators
themselves run in tests/extension: a model made from a strip and one from a double)."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import bpy

from faceadapt.operators.make_double_model import FACEADAPT_OT_make_double_model
from faceadapt.operators.make_personal_model import FACEADAPT_OT_make_personal_model
from faceadapt.operators.model_making import ModelMaking, model_name_problem


def test_a_personal_model_needs_a_name_that_can_be_a_folder():
    assert model_name_problem("anna-2.take_1") is None
    for bad, words in (("", "give the model a name"), ("default", "shipped model"),
                       ("a/b", "letters, digits"), ("..", "letters, digits"), (" anna", "letters")):
        assert words in model_name_problem(bad)


def test_both_model_making_operators_offer_the_same_training_settings():
    shared = {"budget", "expressions", "encoder_expressions", "overwrite", "resume"}
    for operator in (FACEADAPT_OT_make_personal_model, FACEADAPT_OT_make_double_model):
        bpy.utils.register_class(operator)
        try:
            call = getattr(bpy.ops.faceadapt, operator.bl_idname.split(".")[1])
            registered = {prop.identifier for prop in call.get_rna_type().properties}
        finally:
            bpy.utils.unregister_class(operator)
        assert shared | {"model_name"} <= registered, operator.bl_idname
        # the shading refines an identity fitted to footage: a double has none to refine
        assert ("shading_steps" in registered) == (operator is FACEADAPT_OT_make_personal_model)


def test_the_personalize_command_line_carries_the_operators_settings():
    settings = SimpleNamespace(budget=90.0, expressions=120, encoder_expressions=200,
                               overwrite=True, resume=False)
    footage = ModelMaking.personalize_arguments(settings, Path("/clips/anna.mp4"), "anna", (5, 80), 150)
    assert footage == ["personalize", "/clips/anna.mp4", "--out", "anna", "--frames", "5-80",
                       "--shading-steps", "150", "--budget", "90", "--expressions", "120",
                       "--encoder-expressions", "200", "--overwrite"]
    settings.overwrite, settings.resume = False, True
    double = ModelMaking.personalize_arguments(settings, Path("/tmp/double.npz"), "double")
    assert "--frames" not in double and "--shading-steps" not in double
    assert double[-1] == "--resume" and "--overwrite" not in double
