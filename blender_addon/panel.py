"""FaceAdapt's panels: the 3D View sidebar (head, footage, quality, geometry, results) with an
Advanced sub-panel, and the same tracking controls in the Movie Clip Editor's sidebar."""

from __future__ import annotations

import functools

import bpy

from ..backend.formats.head_file import load_head
from .backend_job import results_folder, running_job
from .footage_source import strip_timing
from .geometry_plan import GEOMETRY_MODES, recommended_mode
from .head_builder import MODEL_HEAD, selected_head
from .results_panel import draw_results_folders
from .track_options import PRESETS


@functools.cache
def _default_head_vertices() -> int:
    """Vertices of the head a track without a selected head gets (read once, not per redraw)."""
    return load_head(MODEL_HEAD).num_vertices


def _footage_label(context: bpy.types.Context) -> str:
    space = context.space_data
    if space is not None and space.type == "CLIP_EDITOR":
        clip = space.clip
        return f"Footage: clip '{clip.name}'" if clip is not None else "Footage: open a clip"
    editor = context.scene.sequence_editor
    strip = editor.active_strip if editor else None
    if strip is not None and strip.type == "MOVIE":
        return f"Footage: strip '{strip.name}'"
    return "Footage: make a movie strip active"


def _footage_frames(context: bpy.types.Context) -> int:
    """Frames the footage in view would track (0 when there is none)."""
    space = context.space_data
    if space is not None and space.type == "CLIP_EDITOR":
        return int(space.clip.frame_duration) if space.clip is not None else 0
    editor = context.scene.sequence_editor
    strip = editor.active_strip if editor else None
    if strip is None or strip.type != "MOVIE":
        return 0
    _, first, end = strip_timing(strip)
    return max(0, int(end - first))


def draw_tracking(layout: bpy.types.UILayout, context: bpy.types.Context) -> None:
    """The controls both panels share: what will be tracked onto what, and how."""
    settings = context.scene.faceadapt
    head = selected_head(context)
    layout.label(text=f"Head: {head.name}" if head else "Head: a new default head at the cursor",
                 icon="MESH_MONKEY")
    layout.label(text=_footage_label(context), icon="SEQUENCE")
    layout.prop(settings, "quality")
    preset = PRESETS.get(settings.quality)
    if preset is not None:
        layout.label(text=preset.describe())
    layout.prop(settings, "geometry")
    frames = _footage_frames(context)
    if frames:
        vertices = len(head.data.vertices) if head is not None else _default_head_vertices()
        exact = GEOMETRY_MODES[recommended_mode(frames, vertices)][0]
        layout.label(text=f"Exact geometry for {frames} frames: {exact}", icon="INFO")
    layout.prop(settings, "setup_render")
    layout.prop(settings, "match_fps")
    running = running_job()
    if running:
        layout.label(text=running, icon="TIME")
        layout.operator("faceadapt.cancel_job", icon="CANCEL")
    column = layout.column()
    column.enabled = running is None
    space = context.space_data
    clip = space.clip if space is not None and space.type == "CLIP_EDITOR" else None
    column.operator("faceadapt.track_footage", icon="TRACKING").clip = clip.name if clip else ""
    column.operator("faceadapt.make_personal_model", icon="USER").clip = clip.name if clip else ""
    if clip is None:  # the double is a mesh of the 3D scene
        column.operator("faceadapt.make_double_model", icon="SHAPEKEY_DATA")


class FACEADAPT_PT_main(bpy.types.Panel):
    bl_label = "FaceAdapt"
    bl_space_type = "VIEW_3D"
    bl_region_type = "UI"
    bl_category = "FaceAdapt"

    def draw(self, context: bpy.types.Context) -> None:
        layout = self.layout
        row = layout.row(align=True)
        row.operator("faceadapt.add_head", icon="MONKEY")
        row.operator("faceadapt.add_head", text="From File", icon="FILE_FOLDER").browse = True
        draw_tracking(layout, context)
        column = layout.column()
        column.enabled = selected_head(context) is not None
        column.operator("faceadapt.import_results", icon="IMPORT")
        column.operator_menu_enum("faceadapt.texture_view", "view", icon="TEXTURE")
        column.operator("faceadapt.bake_for_camera", icon="CAMERA_DATA")
        column.operator("faceadapt.retarget_shape_keys", icon="SHAPEKEY_DATA")
        column.operator("faceadapt.bake_head_pose", icon="BONE_DATA")
        column.operator("faceadapt.export_facs_csv", icon="EXPORT")
        layout.operator("faceadapt.track_strips", icon="SEQUENCE")
        layout.separator()
        layout.operator("faceadapt.check_backend", icon="CONSOLE")


class FACEADAPT_PT_advanced(bpy.types.Panel):
    bl_label = "Advanced"
    bl_space_type = "VIEW_3D"
    bl_region_type = "UI"
    bl_category = "FaceAdapt"
    bl_parent_id = "FACEADAPT_PT_main"
    bl_options = {"DEFAULT_CLOSED"}

    def draw(self, context: bpy.types.Context) -> None:
        settings = context.scene.faceadapt
        layout = self.layout
        custom = layout.column()
        custom.enabled = settings.quality == "custom"
        custom.prop(settings, "tracker")
        custom.prop(settings, "texture_size")
        layout.prop(settings, "model")
        layout.prop(settings, "use_frame_range")
        row = layout.row(align=True)
        row.enabled = settings.use_frame_range
        row.prop(settings, "frame_first")
        row.prop(settings, "frame_last")
        layout.prop(settings, "output_folder")


class FACEADAPT_PT_clip(bpy.types.Panel):
    bl_label = "FaceAdapt"
    bl_space_type = "CLIP_EDITOR"
    bl_region_type = "UI"
    bl_category = "FaceAdapt"

    def draw(self, context: bpy.types.Context) -> None:
        draw_tracking(self.layout, context)


class FACEADAPT_PT_results(bpy.types.Panel):
    bl_label = "Results Folders"
    bl_space_type = "VIEW_3D"
    bl_region_type = "UI"
    bl_category = "FaceAdapt"
    bl_parent_id = "FACEADAPT_PT_main"
    bl_options = {"DEFAULT_CLOSED"}

    def draw(self, context: bpy.types.Context) -> None:
        draw_results_folders(self.layout, context, results_folder(context))


PANELS = (FACEADAPT_PT_main, FACEADAPT_PT_advanced, FACEADAPT_PT_results, FACEADAPT_PT_clip)
