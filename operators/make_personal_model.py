"""Make Personal Model: the actor's own face model from the active footage (`python -m backend
personalize`; docs/personal-model.md), then their head added to the scene and the model chosen
as the panel's Face Model, so Track Footage tracks the actor with it."""

from __future__ import annotations

from pathlib import Path

import bpy

from ..blender_addon.backend_job import BackendJob, UserError
from ..blender_addon.footage_source import NoFootage
from .model_making import ModelMaking, adopt_model
from .track_footage import active_footage


class FACEADAPT_OT_make_personal_model(ModelMaking, BackendJob, bpy.types.Operator):
    """Make the actor's own face model from the footage (their head, skin, DAM and image
    encoder; about 14 minutes on 2 CPU cores), add their head and choose the model"""

    bl_idname = "faceadapt.make_personal_model"
    bl_label = "Make Personal Model"
    bl_options = {"REGISTER", "UNDO"}

    model_name: bpy.props.StringProperty(  # type: ignore[valid-type]
        name="Model Name", default="",
        description="The model's name (a folder in your models folder); empty: the footage's name")
    clip: bpy.props.StringProperty(  # type: ignore[valid-type]
        name="Movie Clip", default="",
        description="Use this movie clip (its name) instead of the active strip")
    shading_steps: bpy.props.IntProperty(  # type: ignore[valid-type]
        name="Shading Steps", default=400, min=0,
        description="Steps refining the actor's head shape by the shading of their face, after the "
                    "landmarks (0: landmarks alone, about two minutes sooner)")

    _name: str = ""

    def backend_args(self, context: bpy.types.Context) -> list[str]:
        if context.mode != "OBJECT":
            raise UserError("Make Personal Model works in Object Mode (it adds the actor's head)")
        try:
            source = active_footage(context, self.clip)
        except NoFootage as exc:
            raise UserError(str(exc)) from exc
        self._name = self.free_model_name(self.model_name, Path(source.name).stem)
        return self.personalize_arguments(source.path, self._name,
                                          (source.first_frame, source.last_frame), self.shading_steps)

    def finish(self, context: bpy.types.Context, result_path: str) -> None:
        head = adopt_model(context, self._name, Path(result_path))
        self.report({"INFO"}, f"made the face model '{self._name}' ({result_path}), added its head "
                              f"'{head.name}' and chose the model: Track Footage tracks with it")
