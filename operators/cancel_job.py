"""Cancel: the panel's button for what Esc does, stopping the running backend job."""

from __future__ import annotations

import bpy

from ..blender_addon.backend_job import cancel_running_job, running_job


class FACEADAPT_OT_cancel_job(bpy.types.Operator):
    """Stop the running FaceAdapt job (the backend removes its unfinished output)"""

    bl_idname = "faceadapt.cancel_job"
    bl_label = "Cancel"

    @classmethod
    def poll(cls, context: bpy.types.Context) -> bool:
        return running_job() is not None

    def execute(self, context: bpy.types.Context) -> set[str]:
        if not cancel_running_job():
            self.report({"WARNING"}, "no FaceAdapt job is running")
            return {"CANCELLED"}
        self.report({"INFO"}, "cancelling: the job stops in a moment")
        return {"FINISHED"}
