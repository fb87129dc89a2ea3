"""The FaceAdapt tab in the 3D View sidebar."""

from __future__ import annotations

import bpy

from .head_builder import selected_head


class FACEADAPT_PT_main(bpy.types.Panel):
    bl_label = "FaceAdapt"
    bl_space_type = "VIEW_3D"
    bl_region_type = "UI"
    bl_category = "FaceAdapt"

    def draw(self, context: bpy.types.Context) -> None:
        layout = self.layout
        layout.operator("faceadapt.add_head", icon="MONKEY")
        head = selected_head(context)
        layout.label(text=f"Head: {head.name}" if head else "Head: none selected")
        editor = context.scene.sequence_editor
        strip = editor.active_strip if editor else None
        label = f"Footage: {strip.name}" if strip is not None and strip.type == "MOVIE" else \
            "Footage: make a movie strip active"
        layout.label(text=label)
        column = layout.column()
        column.enabled = head is not None
        column.operator("faceadapt.track_footage", icon="TRACKING")
        column.operator("faceadapt.import_results", icon="IMPORT")
        layout.operator("faceadapt.track_strips", icon="SEQUENCE")
        layout.separator()
        layout.operator("faceadapt.check_backend", icon="CONSOLE")
