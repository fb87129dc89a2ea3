"""Make Personal Model: the actor's own face model from the active footage (`python -m backend
personalize`; docs/personal-model.md), then their head added to the scene and the model chosen
as the panel's Face Model, so Track Footage tracks the actor with it."""

from __future__ import annotations

import re
from pathlib import Path

import bpy

from ..backend.formats.errors import BadInput
from ..backend.formats.model_location import user_models_dir
from ..blender_addon import scene_settings
from ..blender_addon.backend_job import BackendJob, UserError
from ..blender_addon.footage_source import NoFootage
from ..blender_addon.head_builder import build_head
from .track_footage import active_footage

MODEL_HEAD_FILE = "head.npz"


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


class FACEADAPT_OT_make_personal_model(BackendJob, bpy.types.Operator):
    """Make the actor's own face model from the footage (their head, skin, DAM and image
    encoder; about 12 minutes on 2 CPU cores), add their head and choose the model"""

    bl_idname = "faceadapt.make_personal_model"
    bl_label = "Make Personal Model"
    bl_options = {"REGISTER", "UNDO"}

    model_name: bpy.props.StringProperty(  # type: ignore[valid-type]
        name="Model Name", default="",
        description="The model's name (a folder in your models folder); empty: the footage's name")
    clip: bpy.props.StringProperty(  # type: ignore[valid-type]
        name="Movie Clip", default="",
        description="Use this movie clip (its name) instead of the active strip")
    budget: bpy.props.FloatProperty(  # type: ignore[valid-type]
        name="Training Budget", default=600.0, min=1.0, unit="TIME_ABSOLUTE",
        description="Seconds of training, the DAM and the image encoder together (the identity "
                    "fit, the capture and the renders come on top)")
    expressions: bpy.props.IntProperty(  # type: ignore[valid-type]
        name="Lab Expressions", default=400, min=40,
        description="Expressions in the lab capture of the actor's head (8 views each)")
    encoder_expressions: bpy.props.IntProperty(  # type: ignore[valid-type]
        name="Encoder Expressions", default=600, min=40,
        description="Expressions the image encoder learns from (3 renders each)")
    overwrite: bpy.props.BoolProperty(  # type: ignore[valid-type]
        name="Replace", default=False, description="Replace an existing model of that name")
    resume: bpy.props.BoolProperty(  # type: ignore[valid-type]
        name="Resume", default=False,
        description="Continue a run that was cancelled or failed (same footage and settings)")

    _name: str = ""

    def backend_args(self, context: bpy.types.Context) -> list[str]:
        if context.mode != "OBJECT":
            raise UserError("Make Personal Model works in Object Mode (it adds the actor's head)")
        try:
            source = active_footage(context, self.clip)
        except NoFootage as exc:
            raise UserError(str(exc)) from exc
        name = free_model_name(self.model_name, Path(source.name).stem, self.overwrite or self.resume)
        self._name = name
        args = ["personalize", str(source.path), "--out", name,
                "--frames", f"{source.first_frame}-{source.last_frame}", "--budget", f"{self.budget:g}",
                "--expressions", str(self.expressions),
                "--encoder-expressions", str(self.encoder_expressions)]
        return args + (["--overwrite"] if self.overwrite else []) + (["--resume"] if self.resume else [])

    def finish(self, context: bpy.types.Context, result_path: str) -> None:
        head = adopt_model(context, self._name, Path(result_path))
        self.report({"INFO"}, f"made the face model '{self._name}' ({result_path}), added its head "
                              f"'{head.name}' and chose the model: Track Footage tracks with it")


def free_model_name(wanted: str, fallback: str, replace: bool) -> str:
    """The model name to write: `wanted`, or `fallback` made folder-safe when empty. UserError
    when it cannot name a folder, or names an existing model and `replace` is off."""
    name = wanted.strip() or re.sub(r"[^A-Za-z0-9._-]+", "-", fallback).strip("-.")
    problem = model_name_problem(name)
    if problem is not None:
        raise UserError(problem)
    if (user_models_dir() / name).exists() and not replace:
        raise UserError(f"a model named '{name}' exists in {user_models_dir()}: turn on Replace, "
                        "or choose another name")
    return name


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
