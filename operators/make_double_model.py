"""Make Model From Double: a face model of a digital double already in the scene (its mesh,
expression shape keys and texture; `python -m backend personalize DOUBLE.npz`,
docs/personal-model.md), then the model's head added and the model chosen as the panel's Face
Model. The double keeps its own topology: the model's head has the double's vertices in the
double's order, so what is tracked with it (a point cache, for one) also fits the double
(in its object space when it stands unrotated and unscaled)."""

from __future__ import annotations

import tempfile
from pathlib import Path

import bpy

from ..backend.formats.errors import BadInput
from ..blender_addon.backend_job import BackendJob, UserError
from ..blender_addon.double_export import export_double
from .model_making import ModelMaking, adopt_model


def double_file(name: str) -> Path:
    """Where the double is written for the backend: this Blender session's temporary folder."""
    return Path(bpy.app.tempdir or tempfile.gettempdir()) / "faceadapt-doubles" / f"{name}.npz"


class FACEADAPT_OT_make_double_model(ModelMaking, BackendJob, bpy.types.Operator):
    """Make a face model of the selected digital double from its expression shape keys and
    texture (a lab capture rendered by the backend, then the DAM and the image encoder trained;
    about 12 minutes on 2 CPU cores), add the model's head and choose the model"""

    bl_idname = "faceadapt.make_double_model"
    bl_label = "Make Model From Double"
    bl_options = {"REGISTER", "UNDO"}

    model_name: bpy.props.StringProperty(  # type: ignore[valid-type]
        name="Model Name", default="",
        description="The model's name (a folder in your models folder); empty: the double's name")

    _name: str = ""

    def backend_args(self, context: bpy.types.Context) -> list[str]:
        if context.mode != "OBJECT":
            raise UserError("Make Model From Double works in Object Mode (it adds the model's head)")
        double = context.active_object
        if double is None:
            raise UserError("select the digital double's head mesh (with its expression shape keys "
                            "and textured material)")
        self._name = self.free_model_name(self.model_name, double.name)
        path = double_file(self._name)
        try:
            export_double(double, path)
        except BadInput as exc:
            raise UserError(f"'{double.name}' cannot be exported: {exc}") from exc
        return self.personalize_arguments(path, self._name)

    def finish(self, context: bpy.types.Context, result_path: str) -> None:
        head = adopt_model(context, self._name, Path(result_path))
        self.report({"INFO"}, f"made the face model '{self._name}' of the double ({result_path}), "
                              f"added its head '{head.name}' and chose the model: Track Footage "
                              "tracks with it")
