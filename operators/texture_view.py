"""Show Texture: switch the selected head's material between the per-frame textures of its
results (the projected footage, the decoded view-dependent texture) and its plain albedo."""

from __future__ import annotations

import bpy

from ..blender_addon.head_builder import selected_head
from ..blender_addon.texture_sequence import set_texture_view

VIEW_ITEMS = (
    ("footage", "Decoded", "The face model's view-dependent texture decoded for the footage's camera"),
    ("projected", "Projected Footage", "The footage unwrapped onto the head (unseen texels keep the "
     "albedo)"),
    ("albedo", "Albedo", "The head's own albedo, no per-frame texture"),
)


class FACEADAPT_OT_texture_view(bpy.types.Operator):
    """Switch the head's texture between the decoded texture, the projected footage and its albedo"""

    bl_idname = "faceadapt.texture_view"
    bl_label = "Show Texture"
    bl_options = {"REGISTER", "UNDO"}

    view: bpy.props.EnumProperty(name="Texture", items=VIEW_ITEMS)  # type: ignore[valid-type]

    @classmethod
    def poll(cls, context: bpy.types.Context) -> bool:
        head = selected_head(context)
        return head is not None and head.active_material is not None

    def execute(self, context: bpy.types.Context) -> set[str]:
        head = selected_head(context)
        if head is None or head.active_material is None:
            self.report({"ERROR"}, "select a FaceAdapt head with a material")
            return {"CANCELLED"}
        try:
            set_texture_view(head.active_material, self.view)
        except ValueError as exc:
            self.report({"ERROR"}, str(exc))
            return {"CANCELLED"}
        return {"FINISHED"}
