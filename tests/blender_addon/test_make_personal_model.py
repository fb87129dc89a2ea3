"""Make Personal Model's checks before the backend starts (the operator itself runs in
tests/extension: a model made from a strip, its head added and chosen)."""

from __future__ import annotations

from faceadapt.operators.make_personal_model import model_name_problem


def test_a_personal_model_needs_a_name_that_can_be_a_folder():
    assert model_name_problem("anna-2.take_1") is None
    for bad, words in (("", "give the model a name"), ("default", "shipped model"),
                       ("a/b", "letters, digits"), ("..", "letters, digits"), (" anna", "letters")):
        assert words in model_name_problem(bad)
