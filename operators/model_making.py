"""What the two operators that make a face model share (*Make Personal Model* from footage,
*Make Model From Double* from a head in the scene): the training settings they offer, the
`personalize` command line they assemble from them, the model's name checks, and what happens
when the model is made (its head added, the model chosen as the panel's Face Model)."""

from __future__ import annotations

import re
from pathlib import Path

import bpy

from ..backend.formats.errors import BadInput
from ..backend.formats.model_location import user_models_dir
from ..blender_addon import scene_settings
from ..blender_addon.backend_job import UserError
from ..blender_addon.head_builder import build_head

MODEL_HEAD_FILE = "head.npz"


class ModelMaking:
    """Mixin for the model-making operators: the settings `personalize` takes (Blender collects
    property annotations from mixins, so both operators show the same fields)."""

    budget: bpy.props.FloatProperty(  # type: ignore[valid-type]
        name="Training Budget", default=600.0, min=1.0, unit="TIME_ABSOLUTE",
        description="Seconds of training, the DAM and the image encoder together (preparing the "
                    "head, the capture and the renders come on top)")
    expressions: bpy.props.IntProperty(  # type: ignore[valid-type]
        name="Lab Expressions", default=400, min=40,
        description="Expressions of the head in its lab capture (8 views each)")
    encoder_expressions: bpy.props.IntProperty(  # type: ignore[valid-type]
        name="Encoder Expressions", default=600, min=40,
        description="Expressions the image encoder learns from (3 renders each)")
    overwrite: bpy.props.BoolProperty(  # type: ignore[valid-type]
        name="Replace", default=False, description="Replace an existing model of that name")
    resume: bpy.props.BoolProperty(  # type: ignore[valid-type]
        name="Resume", default=False,
        description="Continue a run that was cancelled or failed (same source and settings)")

    def personalize_arguments(self, source: Path, name: str, frames: tuple[int, int] | None = None,
                              shading_steps: int | None = None) -> list[str]:
        """`python -m backend personalize` arguments making model `name` from `source` (footage,
        or a double's head file) with this operator's settings; for footage, `frames` = first,
        last and the identity's `shading_steps` (None: the backend's default)."""
        args = ["personalize", str(source), "--out", name]
        if frames is not None:
            args += ["--frames", f"{frames[0]}-{frames[1]}"]
        if shading_steps is not None:
            args += ["--shading-steps", str(shading_steps)]
        args += ["--budget", f"{self.budget:g}", "--expressions", str(self.expressions),
                 "--encoder-expressions", str(self.encoder_expressions)]
        return args + (["--overwrite"] if self.overwrite else []) + (["--resume"] if self.resume else [])

    def free_model_name(self, wanted: str, fallback: str) -> str:
        """The model name to write: `wanted`, or `fallback` made folder-safe when empty. UserError
        when it cannot name a folder, or names an existing model and neither Replace nor Resume
        is on."""
        name = wanted.strip() or re.sub(r"[^A-Za-z0-9._-]+", "-", fallback).strip("-.")
        problem = model_name_problem(name)
        if problem is not None:
            raise UserError(problem)
        if (user_models_dir() / name).exists() and not (self.overwrite or self.resume):
            raise UserError(f"a model named '{name}' exists in {user_models_dir()}: turn on Replace, "
                            "or choose another name")
        return name


def model_name_problem(name: str) -> str | None:
    """Why `name` cannot name a model in the user's models folder (None when it can)."""
    if not name:
        return "give the model a name (e.g. the actor's)"
    if name == "default":
        return "'default' is the shipped model's name: choose another"
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", name):
        return (f"model name '{name}': use letters, digits, '.', '_' and '-' (it becomes a folder "
                "in your models folder)")
    return None


def adopt_model(context: bpy.types.Context, name: str, model_folder: Path) -> bpy.types.Object:
    """Add the model's head to the scene, selected and active, and choose the model as the
    panel's Face Model; returns the head."""
    head_file = model_folder / MODEL_HEAD_FILE
    try:
        head = build_head(context, head_file, str(head_file.resolve()))
    except (BadInput, ValueError) as exc:
        raise UserError(str(exc)) from exc
    scene_settings.get(context).model = name
    for obj in context.selected_objects:
        obj.select_set(False)
    head.select_set(True)
    context.view_layer.objects.active = head
    return head
