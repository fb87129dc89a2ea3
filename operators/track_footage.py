"""Track Footage: the active movie strip (or Movie Clip Editor clip) onto the selected head."""

from __future__ import annotations

from pathlib import Path

import bpy

from ..blender_addon.backend_job import BackendJob, UserError, output_dir
from ..blender_addon.footage_source import (
    FootageSource,
    NoFootage,
    from_movie_clip,
    from_movie_strip,
    require_file,
)
from ..blender_addon.head_builder import HEAD_PROPERTY, selected_head
from .import_results import import_results_onto

OTHER_HEAD_TRACKER = "landmark-fit"


def active_footage(context: bpy.types.Context) -> FootageSource:
    """The footage the user points at; NoFootage saying what to select otherwise."""
    space = getattr(context, "space_data", None)
    clip = getattr(space, "clip", None) if space is not None and space.type == "CLIP_EDITOR" else None
    if clip is not None:
        return require_file(from_movie_clip(clip, bpy.path.abspath(clip.filepath)))
    editor = context.scene.sequence_editor
    strip = editor.active_strip if editor is not None else None
    if strip is None:
        raise NoFootage("no footage selected: make a movie strip active in the Video Sequencer "
                        "(or open a clip in the Movie Clip Editor)")
    source = from_movie_strip(strip, bpy.path.abspath(getattr(strip, "filepath", "")))
    return require_file(source)


class FACEADAPT_OT_track_footage(BackendJob, bpy.types.Operator):
    """Track the active movie strip onto the selected FaceAdapt head and import the result"""

    bl_idname = "faceadapt.track_footage"
    bl_label = "Track Footage"
    bl_options = {"REGISTER", "UNDO"}

    _source: FootageSource | None = None
    _head_name: str = ""

    def backend_args(self, context: bpy.types.Context) -> list[str]:
        head = selected_head(context)
        if head is None:
            raise UserError("select a FaceAdapt head to track onto (Add FaceAdapt Head)")
        try:
            self._source = active_footage(context)
        except NoFootage as exc:
            raise UserError(str(exc)) from exc
        self._head_name = head.name
        spec = str(head.get(HEAD_PROPERTY, "default"))
        if spec != "default" and not Path(spec).is_file():
            raise UserError(f"the head file of '{head.name}' ({spec}) is missing")
        out = output_dir(context, self._source.name)
        # The default tracker tracks its face model's own head (the default head); a head from
        # another file is tracked by the landmark fit, which fits any head.
        tracker = [] if spec == "default" else ["--tracker", OTHER_HEAD_TRACKER]
        return ["track", str(self._source.path), "--out", str(out), "--frames",
                self._source.frames_argument(), "--head", spec, *tracker]

    def finish(self, context: bpy.types.Context, result_path: str) -> None:
        head = bpy.data.objects.get(self._head_name)
        if head is None or self._source is None:
            raise UserError(f"the head '{self._head_name}' is gone; results are in {result_path}")
        warnings: list[str] = []
        import_results_onto(context, head, Path(result_path), warnings,
                            self._source.scene_frame_of_source_zero)
        for warning in warnings:
            self.report({"WARNING"}, warning)
        self.report({"INFO"}, f"tracked {self._source.name} onto '{head.name}' ({result_path})")
