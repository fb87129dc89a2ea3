"""Track Footage: the active movie strip (or Movie Clip Editor clip) onto the selected head, or
onto a new default head at the 3D cursor."""

from __future__ import annotations

import os
from pathlib import Path

import bpy

from ..backend.formats.errors import BadInput
from ..backend.formats.head_file import load_head
from ..blender_addon import scene_settings
from ..blender_addon.backend_job import BackendJob, UserError, output_dir, results_folder
from ..blender_addon.footage_source import (
    FootageSource,
    NoFootage,
    from_movie_clip,
    from_movie_strip,
    require_file,
)
from ..blender_addon.head_builder import (
    HEAD_PROPERTY,
    MODEL_HEAD,
    build_head,
    mesh_topology_hash,
    remove_head,
    selected_head,
)
from ..blender_addon.head_checks import require_editable_head
from ..blender_addon.track_options import track_arguments
from .import_results import import_results_onto


def active_footage(context: bpy.types.Context, clip_name: str = "") -> FootageSource:
    """The footage the user points at: the movie clip `clip_name` when given, else the Movie
    Clip Editor's clip, else the active movie strip; NoFootage saying what to select otherwise."""
    space = getattr(context, "space_data", None)
    clip = getattr(space, "clip", None) if space is not None and space.type == "CLIP_EDITOR" else None
    if clip_name:
        clip = bpy.data.movieclips.get(clip_name)
        if clip is None:
            raise NoFootage(f"there is no movie clip '{clip_name}' in this file")
    if clip is not None:
        return require_file(from_movie_clip(clip, bpy.path.abspath(clip.filepath)))
    editor = context.scene.sequence_editor
    strip = editor.active_strip if editor is not None else None
    if strip is None:
        raise NoFootage("no footage selected: make a movie strip active in the Video Sequencer "
                        "(or open a clip in the Movie Clip Editor)")
    source = from_movie_strip(strip, bpy.path.abspath(getattr(strip, "filepath", "")))
    return require_file(source)


def require_writable(folder: Path) -> None:
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(f"cannot create the output folder {folder}: {exc.strerror}; choose another "
                        "in FaceAdapt's Advanced panel") from exc
    if not os.access(folder, os.W_OK | os.X_OK):
        raise UserError(f"the output folder {folder} is not writable: choose another in "
                        "FaceAdapt's Advanced panel")


def require_tracked_topology(head: bpy.types.Object, head_file: Path) -> None:
    """The results will carry `head_file`'s topology: a mesh edited since (vertices added,
    removed or reordered, UVs changed) could not take them, so it is refused before tracking."""
    try:
        expected = load_head(head_file).topology_hash
    except BadInput as exc:
        raise UserError(str(exc)) from exc
    if mesh_topology_hash(head.data) != expected:
        raise UserError(f"'{head.name}' ({len(head.data.vertices)} vertices) no longer has the "
                        f"topology of its head ({head_file.name}): its mesh was edited, so results "
                        "could not be imported onto it. Track onto a new head (deselect it) or "
                        "undo the edit")


def scene_fps(scene: bpy.types.Scene) -> float:
    return scene.render.fps / scene.render.fps_base


def set_scene_fps(scene: bpy.types.Scene, fps: float) -> None:
    """Whole rates as they are (25/1); others as thousandths (29.97 = 29970/1000)."""
    if abs(fps - round(fps)) < 1e-6:
        scene.render.fps, scene.render.fps_base = round(fps), 1.0
    else:
        scene.render.fps, scene.render.fps_base = round(fps * 1000), 1000.0


class FACEADAPT_OT_track_footage(BackendJob, bpy.types.Operator):
    """Track the active movie strip onto the selected FaceAdapt head (or a new default head) and
    import the result"""

    bl_idname = "faceadapt.track_footage"
    bl_label = "Track Footage"
    bl_options = {"REGISTER", "UNDO"}

    clip: bpy.props.StringProperty(  # type: ignore[valid-type]
        name="Movie Clip", default="",
        description="Track this movie clip (its name) instead of the active strip; the Movie Clip "
                    "Editor's panel passes its clip")

    _source: FootageSource | None = None
    _head_name: str = ""

    def backend_args(self, context: bpy.types.Context) -> list[str]:
        settings = scene_settings.get(context)
        head = selected_head(context)
        if head is not None:
            require_editable_head(context, head)
        elif context.mode != "OBJECT":
            raise UserError("switch to Object Mode (Tab) to track onto a new head")
        try:
            self._source = active_footage(context, self.clip)
        except NoFootage as exc:
            raise UserError(str(exc)) from exc
        fps = scene_fps(context.scene)
        if abs(self._source.fps - fps) > 1e-3 and not settings.match_fps:
            raise UserError(f"the footage '{self._source.name}' runs at {self._source.fps:g} fps and "
                            f"the scene at {fps:g}: turn on Match Scene Frame Rate in the FaceAdapt "
                            "panel, or set the scene's frame rate")
        self._head_name = head.name if head is not None else ""
        spec = str(head.get(HEAD_PROPERTY, "default")) if head is not None else "default"
        if spec != "default" and not Path(spec).is_file():
            raise UserError(f"the head file of '{head.name}' ({spec}) is missing")
        if head is not None:
            require_tracked_topology(head, MODEL_HEAD if spec == "default" else Path(spec))
        require_writable(results_folder(context))
        out = output_dir(context, self._source.name)
        options = track_arguments(settings.choices(), spec, self._source.first_frame,
                                  self._source.last_frame)
        tracker = options[options.index("--tracker") + 1]
        if tracker != settings.choices().resolved()[0]:
            self.report({"INFO"}, f"'{head.name}' is not the face model's head: tracked with the "
                                  f"landmark fit")
        return ["track", str(self._source.path), "--out", str(out), *options]

    def finish(self, context: bpy.types.Context, result_path: str) -> None:
        source = self._source
        assert source is not None
        settings = scene_settings.get(context)
        if self._head_name:
            head = bpy.data.objects.get(self._head_name)
            if head is None:
                raise UserError(f"the head '{self._head_name}' is gone; results are in {result_path}")
            require_editable_head(context, head)
            new_head = None
        else:
            if context.mode != "OBJECT":
                raise UserError(f"switch to Object Mode (Tab) to make the new head; results are in "
                                f"{result_path} (Import Results)")
            head = new_head = build_head(context, MODEL_HEAD, "default")
            head.parent.location = context.scene.cursor.location
        warnings: list[str] = []
        try:
            _, geometry = import_results_onto(context, head, Path(result_path), warnings,
                                                   source.scene_frame_of_source_zero,
                                                   geometry_mode=settings.geometry,
                                                   render=settings.setup_render)
            if settings.match_fps and abs(source.fps - scene_fps(context.scene)) > 1e-3:
                set_scene_fps(context.scene, source.fps)
        except Exception:
            if new_head is not None:
                remove_head(new_head)
            raise
        for warning in warnings:
            self.report({"WARNING"}, warning)
        self.report({"INFO"}, f"tracked {source.name} onto '{head.name}' as "
                              f"{geometry.describe()} ({result_path})")
