"""Bake for Camera: textures decoded for the scene's camera (not the footage's), shown on the
head: the camera's per-frame view of the head written as a camera file, `python -m backend
bake-textures` run on the head's results, and the material switched to the new view."""

from __future__ import annotations

import re
from pathlib import Path

import bpy

from ..backend.formats.errors import BadInput
from ..backend.formats.results_dir import read_results
from ..blender_addon import preferences
from ..blender_addon.backend_job import BackendJob, UserError
from ..blender_addon.camera_export import camera_file
from ..blender_addon.head_builder import selected_head
from ..blender_addon.head_checks import require_editable_head
from ..blender_addon.scene_import import RESULTS_PROPERTY, SOURCE_ZERO_PROPERTY
from ..blender_addon.texture_sequence import attach_texture_sequence

# Texture folders the results already hold: a camera of that name must not overwrite them.
RESERVED_VIEWS = ("footage", "projected", "albedo")


def view_name(camera_name: str) -> str:
    """A texture folder name from a camera's name (letters, digits, '_' and '-'), never one of
    RESERVED_VIEWS."""
    name = re.sub(r"[^A-Za-z0-9_-]+", "_", camera_name).strip("_-")[:56] or "camera"
    return f"{name}_camera" if name.lower() in RESERVED_VIEWS else name


class FACEADAPT_OT_bake_for_camera(BackendJob, bpy.types.Operator):
    """Decode the head's view-dependent textures for the scene's active camera and show them"""

    bl_idname = "faceadapt.bake_for_camera"
    bl_label = "Bake for Camera"
    bl_options = {"REGISTER", "UNDO"}

    _head_name: str = ""
    _view: str = ""

    def backend_args(self, context: bpy.types.Context) -> list[str]:
        head = selected_head(context)
        if head is None:
            raise UserError("select a FaceAdapt head with imported results")
        require_editable_head(context, head)
        camera = context.scene.camera
        if camera is None:
            raise UserError("the scene has no active camera to bake for")
        directory = head.get(RESULTS_PROPERTY)
        if not directory or SOURCE_ZERO_PROPERTY not in head:
            raise UserError(f"'{head.name}' has no imported results: import or track first")
        try:
            results = read_results(Path(directory))
        except BadInput as exc:
            raise UserError(str(exc)) from exc
        if "latent" not in results.tracking:
            raise UserError(f"{directory} holds no face-model codes (its tracker decodes no "
                            "textures): track with the adapted or encoder tracker to bake")
        if head.active_material is None:
            raise UserError(f"'{head.name}' has no material to show the textures on")
        zero = int(head[SOURCE_ZERO_PROPERTY])
        frames = {int(f): zero + int(f) for f in results.frames}
        try:
            cameras = camera_file(context.scene, head.parent, camera, frames)
        except ValueError as exc:
            raise UserError(str(exc)) from exc
        self._head_name, self._view = head.name, view_name(camera.name)
        path = preferences.user_directory() / "cameras" / f"{self._view}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        cameras.save(path)
        return ["bake-textures", str(directory), "--camera", str(path), "--view", self._view,
                "--overwrite"]

    def finish(self, context: bpy.types.Context, result_path: str) -> None:
        head = bpy.data.objects.get(self._head_name)
        if head is None or head.active_material is None:
            raise UserError(f"the head '{self._head_name}' is gone; textures are in {result_path}")
        try:
            results = read_results(Path(head[RESULTS_PROPERTY]))
            attach_texture_sequence(head.active_material, results.directory, results.frames,
                                    int(head[SOURCE_ZERO_PROPERTY]), self._view)
        except (BadInput, ValueError) as exc:
            raise UserError(str(exc)) from exc
        self.report({"INFO"}, f"textures decoded for the camera shown on '{head.name}' "
                              f"(textures/{self._view})")
