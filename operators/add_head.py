"""Add FaceAdapt Head: the default head, exported by the backend, as a rigged mesh."""

from __future__ import annotations

from pathlib import Path

import bpy

from ..backend.formats.errors import BadInput
from ..blender_addon import preferences
from ..blender_addon.backend_job import BackendJob, UserError
from ..blender_addon.head_builder import build_head


class FACEADAPT_OT_add_head(BackendJob, bpy.types.Operator):
    """Add the default FaceAdapt head: mesh with ARKit shape keys, albedo material, rig"""

    bl_idname = "faceadapt.add_head"
    bl_label = "Add FaceAdapt Head"
    bl_options = {"REGISTER", "UNDO"}

    def head_file(self) -> Path:
        return preferences.user_directory() / "heads" / "default.npz"

    def backend_args(self, context: bpy.types.Context) -> list[str]:
        if context.mode != "OBJECT":
            raise UserError("Add FaceAdapt Head works in Object Mode")
        self.head_file().parent.mkdir(parents=True, exist_ok=True)
        return ["export-head", "--head", "default", "--out", str(self.head_file()), "--overwrite"]

    def finish(self, context: bpy.types.Context, result_path: str) -> None:
        try:
            head = build_head(context, Path(result_path), "default")
        except (BadInput, ValueError) as exc:
            raise UserError(str(exc)) from exc
        for obj in context.selected_objects:
            obj.select_set(False)
        head.select_set(True)
        context.view_layer.objects.active = head
        self.report({"INFO"}, f"added '{head.name}' with {len(head.data.shape_keys.key_blocks) - 1} "
                              "shape keys")
