"""Import Results: a results directory onto the selected FaceAdapt head."""

from __future__ import annotations

from pathlib import Path

import bpy

from ..backend.formats.errors import BadInput
from ..backend.formats.results_dir import check_topology, read_results
from ..blender_addon.backend_job import UserError
from ..blender_addon.footage_source import strip_timing
from ..blender_addon.geometry_plan import DEFAULT_MODE, GeometryPlan, plan_geometry
from ..blender_addon.head_builder import HASH_PROPERTY, mesh_topology_hash, selected_head
from ..blender_addon.head_checks import require_editable_head
from ..blender_addon.results_import import plan_import
from ..blender_addon.scene_import import (
    camera_name_of,
    has_face_controls,
    head_shapes,
    import_into_scene,
)
from ..blender_addon.scene_settings import GEOMETRY_ITEMS


def strip_playing(context: bpy.types.Context, footage: str) -> bpy.types.Strip | None:
    """A movie strip in the scene's sequencer that plays `footage`."""
    editor = context.scene.sequence_editor
    if editor is None:
        return None
    wanted = Path(footage).resolve()
    for strip in editor.strips_all:
        if strip.type == "MOVIE" and Path(bpy.path.abspath(strip.filepath)).resolve() == wanted:
            return strip
    return None


def import_results_onto(context: bpy.types.Context, head: bpy.types.Object, directory: Path,
                        warnings: list[str], scene_frame_of_source_zero: int | None = None,
                        camera_name: str | None = None, geometry_mode: str = DEFAULT_MODE,
                        render: bool = True) -> tuple[bpy.types.Object, GeometryPlan]:
    """Validate, plan and import; UserError for anything the user must fix (nothing changed).
    Non-fatal problems are appended to `warnings`. Returns the camera (`camera_name`, by default
    the head's own: scene_import.camera_name_of) and the geometry written (its mode and
    reconstruction error)."""
    require_editable_head(context, head)
    try:
        results = read_results(directory)
        check_topology(results, f"'{head.name}'", len(head.data.vertices),
                       mesh_topology_hash(head.data))
        # result.json's source fields are read on use: planning is still validation.
        if scene_frame_of_source_zero is None:
            strip = strip_playing(context, results.footage)
            scene_frame_of_source_zero = (round(strip_timing(strip)[0]) if strip is not None
                                          else context.scene.frame_start - int(results.frames[0]))
        plan = plan_import(results, scene_frame_of_source_zero)
        rest, shapes = head_shapes(head)
        geometry = plan_geometry(geometry_mode, results, rest, shapes,
                                 has_face_controls(head.parent) if head.parent else False)
    except BadInput as exc:
        raise UserError(str(exc)) from exc
    warnings.extend(geometry.notes)
    try:
        camera = import_into_scene(context, head, results, plan, geometry, warnings,
                                   camera_name or camera_name_of(head), render)
    except ValueError as exc:
        raise UserError(str(exc)) from exc
    return camera, geometry


class FACEADAPT_OT_import_results(bpy.types.Operator):
    """Import a FaceAdapt results directory onto the selected head: per-frame shape keys, head
    motion and a camera matching the footage"""

    bl_idname = "faceadapt.import_results"
    bl_label = "Import FaceAdapt Results"
    bl_options = {"REGISTER", "UNDO"}

    directory: bpy.props.StringProperty(subtype="DIR_PATH")  # type: ignore[valid-type]
    geometry: bpy.props.EnumProperty(  # type: ignore[valid-type]
        name="Geometry", items=GEOMETRY_ITEMS, default=DEFAULT_MODE,
        description="How the tracked performance becomes geometry")
    setup_render: bpy.props.BoolProperty(  # type: ignore[valid-type]
        name="Set Up Render", default=True,
        description="Make F12 render the head over the footage (lights, world, compositor)")

    @classmethod
    def poll(cls, context: bpy.types.Context) -> bool:
        return selected_head(context) is not None

    def invoke(self, context: bpy.types.Context, event: bpy.types.Event) -> set[str]:
        context.window_manager.fileselect_add(self)
        return {"RUNNING_MODAL"}

    def execute(self, context: bpy.types.Context) -> set[str]:
        head = selected_head(context)
        if head is None:
            self.report({"ERROR"}, "select a FaceAdapt head (Add FaceAdapt Head) to import onto")
            return {"CANCELLED"}
        if HASH_PROPERTY not in head:
            self.report({"ERROR"}, f"'{head.name}' is not a FaceAdapt head")
            return {"CANCELLED"}
        warnings: list[str] = []
        try:
            camera, geometry = import_results_onto(
                context, head, Path(bpy.path.abspath(self.directory)), warnings,
                geometry_mode=self.geometry, render=self.setup_render)
        except UserError as exc:
            self.report({"ERROR"}, str(exc))
            return {"CANCELLED"}
        for warning in warnings:
            self.report({"WARNING"}, warning)
        self.report({"INFO"}, f"imported onto '{head.name}' as {geometry.describe()}, camera "
                              f"'{camera.name}'")
        return {"FINISHED"}
