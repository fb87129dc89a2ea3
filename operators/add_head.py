"""Add FaceAdapt Head: the default head, or a head file (e.g. the actor's own head from
`python -m backend fit-identity`), checked and copied by the backend, as a rigged mesh."""

from __future__ import annotations

import hashlib
from pathlib import Path

import bpy

from ..backend.formats.errors import BadInput
from ..blender_addon import preferences
from ..blender_addon.backend_job import BackendJob, UserError
from ..blender_addon.head_builder import build_head


class FACEADAPT_OT_add_head(BackendJob, bpy.types.Operator):
    """Add a FaceAdapt head (the default one, or a head file): mesh with ARKit shape keys,
    albedo material, rig"""

    bl_idname = "faceadapt.add_head"
    bl_label = "Add FaceAdapt Head"
    bl_options = {"REGISTER", "UNDO"}

    filepath: bpy.props.StringProperty(  # type: ignore[valid-type]
        name="Head File",
        description="A head.npz to add (e.g. the actor's own head from fit-identity); empty adds "
                    "the default head",
        subtype="FILE_PATH", default="")
    browse: bpy.props.BoolProperty(  # type: ignore[valid-type]
        name="Browse", description="Pick the head file in a file browser first",
        default=False, options={"HIDDEN", "SKIP_SAVE"})
    filter_glob: bpy.props.StringProperty(default="*.npz", options={"HIDDEN"})  # type: ignore[valid-type]

    def invoke(self, context: bpy.types.Context, event: bpy.types.Event) -> set[str]:
        if self.browse and not self.filepath and not bpy.app.background:
            # The file browser calls execute (the blocking path: export-head takes seconds).
            context.window_manager.fileselect_add(self)
            return {"RUNNING_MODAL"}
        return super().invoke(context, event)

    def head_file(self) -> Path:
        """Where the backend writes the head this operator builds: a copy kept in the extension's
        user folder, so the scene's head does not depend on the file the user picked staying."""
        folder = preferences.user_directory() / "heads"
        if not self.filepath:
            return folder / "default.npz"
        source = Path(bpy.path.abspath(self.filepath)).resolve()
        digest = hashlib.sha256(str(source).encode()).hexdigest()[:8]
        return folder / f"{source.stem}-{digest}.npz"

    def backend_args(self, context: bpy.types.Context) -> list[str]:
        if context.mode != "OBJECT":
            raise UserError("Add FaceAdapt Head works in Object Mode")
        source = "default"
        if self.filepath:
            path = Path(bpy.path.abspath(self.filepath))
            if not path.is_file():
                raise UserError(f"head file {path} does not exist: pick a head.npz (python -m "
                                "backend fit-identity writes one)")
            source = str(path.resolve())
        self.head_file().parent.mkdir(parents=True, exist_ok=True)
        return ["export-head", "--head", source, "--out", str(self.head_file()), "--overwrite"]

    def finish(self, context: bpy.types.Context, result_path: str) -> None:
        # Track Footage passes a file head's copy to the backend as --head.
        head_id = str(Path(result_path).resolve()) if self.filepath else "default"
        try:
            head = build_head(context, Path(result_path), head_id)
        except (BadInput, ValueError) as exc:
            raise UserError(str(exc)) from exc
        for obj in context.selected_objects:
            obj.select_set(False)
        head.select_set(True)
        context.view_layer.objects.active = head
        self.report({"INFO"}, f"added '{head.name}' with {len(head.data.shape_keys.key_blocks) - 1} "
                              "shape keys")
