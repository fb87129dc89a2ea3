"""Remove Results: delete one FaceAdapt results directory from disk, after a confirmation
(blender_addon/results_listing.remove_results refuses anything holding files FaceAdapt did
not write). The listing itself is drawn by blender_addon/results_panel.py."""

from __future__ import annotations

from pathlib import Path

import bpy

from ..blender_addon import results_panel
from ..blender_addon.results_listing import remove_results
from ..blender_addon.scene_import import RESULTS_PROPERTY


def heads_using(directory: Path) -> list[str]:
    """Objects whose last import came from `directory`."""
    wanted = directory.resolve()
    return [obj.name for obj in bpy.data.objects
            if obj.get(RESULTS_PROPERTY)
            and Path(bpy.path.abspath(str(obj[RESULTS_PROPERTY]))).resolve() == wanted]


class FACEADAPT_OT_remove_results(bpy.types.Operator):
    """Delete this results folder from disk (only FaceAdapt's own files; this cannot be undone)"""

    bl_idname = "faceadapt.remove_results"
    bl_label = "Remove Results"
    bl_options = {"INTERNAL"}  # a disk change: undo cannot bring it back

    directory: bpy.props.StringProperty(  # type: ignore[valid-type]
        name="Directory", subtype="DIR_PATH", options={"SKIP_SAVE"})

    def invoke(self, context: bpy.types.Context, event: bpy.types.Event) -> set[str]:
        path = Path(bpy.path.abspath(self.directory))
        used = heads_using(path)
        note = f" {', '.join(used)} was imported from it." if used else ""
        return context.window_manager.invoke_confirm(
            self, event, title="Remove Results", confirm_text="Delete", icon="WARNING",
            message=f"Delete {path.name} from disk? This cannot be undone.{note}")

    def execute(self, context: bpy.types.Context) -> set[str]:
        if not self.directory:
            self.report({"ERROR"}, "no results folder given")
            return {"CANCELLED"}
        path = Path(bpy.path.abspath(self.directory))
        used = heads_using(path)
        try:
            remove_results(path)
        except (ValueError, OSError) as exc:
            self.report({"ERROR"}, str(exc))
            return {"CANCELLED"}
        finally:
            results_panel.forget_listing()
        if used:
            self.report({"WARNING"}, f"{', '.join(used)} was imported from the removed results: "
                                     "retargeting and export need them re-imported")
        self.report({"INFO"}, f"removed {path}")
        return {"FINISHED"}
