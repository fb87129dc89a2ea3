"""Track Strips: every movie strip of the Video Sequencer (or the selected ones) as one batch, each
imported onto a head of its own."""

from __future__ import annotations

import json
from pathlib import Path

import bpy

from ..backend.formats.errors import BadInput
from ..backend.formats.head_file import load_head
from ..backend.formats.results_dir import check_topology, read_results
from ..blender_addon import preferences, scene_settings
from ..blender_addon.backend_job import BackendJob, UserError, output_dir
from ..blender_addon.footage_source import NoFootage, from_movie_strip, require_file
from ..blender_addon.head_builder import MODEL_HEAD, build_head, remove_head
from ..blender_addon.render_setup import setup_render
from ..blender_addon.scene_import import remove_camera
from ..blender_addon.shot_list import StripShot, shot_file_text, strip_shots
from .import_results import import_results_onto

SHOT_FILE = "shots.toml"
# The default tracker's heads: its face model's own head, shipped with the backend.


class FACEADAPT_OT_track_strips(BackendJob, bpy.types.Operator):
    """Track every movie strip (or the selected ones) as a batch, in the backend or on the Ray
    cluster set in the preferences, and import each onto a new FaceAdapt head"""

    bl_idname = "faceadapt.track_strips"
    bl_label = "Track Strips"
    bl_options = {"REGISTER", "UNDO"}

    selected_only: bpy.props.BoolProperty(  # type: ignore[valid-type]
        name="Selected Strips Only", description="Track the selected movie strips, not all of them",
        default=False)

    _shots: list[StripShot] = []

    def backend_args(self, context: bpy.types.Context) -> list[str]:
        if context.mode != "OBJECT":
            raise UserError("Track Strips works in Object Mode")
        editor = context.scene.sequence_editor
        strips = [s for s in (editor.strips_all if editor else []) if s.type == "MOVIE"
                  and (s.select or not self.selected_only)]
        if not strips:
            raise UserError("no movie strips to track: add movie strips to the Video Sequencer"
                            + (" and select them" if self.selected_only else ""))
        try:
            sources = [require_file(from_movie_strip(s, bpy.path.abspath(s.filepath))) for s in strips]
        except NoFootage as exc:
            raise UserError(str(exc)) from exc
        if not MODEL_HEAD.is_file():
            raise UserError(f"the default model's head ({MODEL_HEAD}) is missing: reinstall FaceAdapt")
        self._shots = strip_shots(sources)
        out = output_dir(context, "batch")
        out.mkdir(parents=True)
        device = preferences.get(context).device  # batch takes it per shot, not from --device
        (out / SHOT_FILE).write_text(shot_file_text(self._shots, None, device), encoding="utf-8")
        address = preferences.get(context).ray_address.strip()
        engine = ["--engine", "ray", *(["--address", address] if address != "local" else [])] if address else []
        return ["batch", str(out / SHOT_FILE), "--out", str(out), "--partial-ok", *engine]

    def finish(self, context: bpy.types.Context, result_path: str) -> None:
        report = json.loads(Path(result_path).read_text())
        entries = {e["name"]: e for e in report["shots"]}
        finished = [s for s in self._shots if entries[s.name]["status"] in ("done", "skipped")]
        try:  # every finished shot is read and checked before the scene changes
            head = load_head(MODEL_HEAD)
            for shot in finished:
                check_topology(read_results(Path(entries[shot.name]["results"])), "the default head",
                               head.num_vertices, head.topology_hash)
        except BadInput as exc:
            raise UserError(str(exc)) from exc
        warnings: list[str] = []
        scene = context.scene
        settings = scene_settings.get(context)
        made: list[tuple[bpy.types.Object, bpy.types.Object]] = []  # (head, camera) per shot
        try:
            for shot in finished:
                name = f"FaceAdapt {shot.source.name}"
                head = build_head(context, MODEL_HEAD, "default", name=name)
                made.append((head, head))
                camera, _ = import_results_onto(context, head, Path(entries[shot.name]["results"]),
                                                warnings, shot.source.scene_frame_of_source_zero,
                                                geometry_mode=settings.geometry, render=False)
                made[-1] = (head, camera)
            if made and settings.setup_render:
                # One render setup (lights, world, compositor) for the scene: the first strip's.
                first_head, first_camera = made[0]
                clip = next((b.clip for b in first_camera.data.background_images if b.clip), None)
                setup = setup_render(scene, first_camera, first_head, clip,
                                     finished[0].source.scene_frame_of_source_zero)
                warnings.extend(setup.warnings)
                if len(made) > 1:
                    warnings.append(f"F12 composites the footage of '{finished[0].source.name}' "
                                    "behind every strip: the camera markers switch cameras, not "
                                    "the compositor's clip")
        except Exception:
            for head, camera in reversed(made):
                if camera is not head:
                    remove_camera(camera)
                remove_head(head)
            raise
        for shot, (_, camera) in zip(finished, made, strict=True):
            # Each strip's own camera from its first frame on: a camera marker switches to it there.
            name = f"FaceAdapt {shot.source.name}"
            first = shot.source.scene_frame_of_source_zero + shot.source.first_frame
            marker = scene.timeline_markers.get(name) or scene.timeline_markers.new(name, frame=first)
            marker.frame, marker.camera = first, camera
        if finished:  # the scene plays every imported strip (each import set it to its own range)
            zero = [s.source.scene_frame_of_source_zero for s in finished]
            scene.frame_start = min(z + s.source.first_frame for z, s in zip(zero, finished, strict=True))
            scene.frame_end = max(z + s.source.last_frame for z, s in zip(zero, finished, strict=True))
        for warning in warnings:
            self.report({"WARNING"}, warning)
        for shot in self._shots:
            entry = entries[shot.name]
            if entry["status"] == "failed":
                self.report({"WARNING"}, f"strip '{shot.source.name}' failed: {entry['error']}")
        self.report({"INFO"}, f"tracked {len(finished)} of {len(self._shots)} strips onto heads of "
                              f"their own ({Path(result_path).parent})")
