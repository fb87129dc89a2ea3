"""Export FACS CSV: the active FaceAdapt head's tracked ARKit weights and head rotation as a
Live Link Face CSV (blender_addon/facs_csv.py), for tools that read the iPhone app's takes."""

from __future__ import annotations

from pathlib import Path

import bpy
import numpy as np
from bpy_extras.io_utils import ExportHelper

from ..backend.formats.results_dir import Results
from ..blender_addon.backend_job import UserError
from ..blender_addon.facs_csv import FacsCsvReport, write_live_link_csv
from ..blender_addon.head_builder import selected_head
from ..blender_addon.scene_import import RESULTS_PROPERTY
from .retarget import head_results


def source_fps(results: Results) -> float:
    """The footage's frame rate from result.json; UserError when it does not say."""
    source = results.document.get("source")
    fps = source.get("fps") if isinstance(source, dict) else None
    if isinstance(fps, bool) or not isinstance(fps, int | float) or not fps > 0:
        raise UserError(f"the results in {results.directory} do not say the footage's frame rate "
                        f"(source.fps: {fps!r}); re-track the clip")
    return float(fps)


def export_facs(results: Results, path: Path) -> FacsCsvReport:
    """Write `results` as a Live Link Face CSV at `path` (no weights: blendshape columns 0)."""
    frames = results.frames
    if "weights" in results.tracking:
        weights = results.tracking["weights"]
        names = [str(n) for n in results.tracking["weight_names"]]
    else:
        weights, names = np.zeros((len(frames), 0)), []
    try:
        return write_live_link_csv(path, weights, names, results.head_pose[:, :3, :3], frames,
                                   source_fps(results))
    except (ValueError, OSError) as exc:
        raise UserError(str(exc)) from exc


class FACEADAPT_OT_export_facs_csv(bpy.types.Operator, ExportHelper):
    """Export the active FaceAdapt head's tracked ARKit weights and head rotation as a Live
    Link Face CSV (Unreal, MetaHuman and other CSV importers)"""

    bl_idname = "faceadapt.export_facs_csv"
    bl_label = "Export FACS CSV"
    bl_options = {"REGISTER"}

    filename_ext = ".csv"
    filter_glob: bpy.props.StringProperty(default="*.csv", options={"HIDDEN"})  # type: ignore[valid-type]

    @classmethod
    def poll(cls, context: bpy.types.Context) -> bool:
        return selected_head(context) is not None

    def invoke(self, context: bpy.types.Context, event: bpy.types.Event) -> set[str]:
        head = selected_head(context)
        directory = head.get(RESULTS_PROPERTY) if head is not None else None
        if not self.filepath and directory:  # <results name>.csv beside the .blend
            folder = (Path(bpy.path.abspath("//")) if bpy.data.filepath
                      else Path(bpy.path.abspath(str(directory))).parent)
            self.filepath = str(folder / f"{Path(str(directory)).name}{self.filename_ext}")
        return ExportHelper.invoke(self, context, event)

    def execute(self, context: bpy.types.Context) -> set[str]:
        head = selected_head(context)
        if head is None:
            self.report({"ERROR"}, "make the FaceAdapt head the active object")
            return {"CANCELLED"}
        path = Path(bpy.path.ensure_ext(bpy.path.abspath(self.filepath), self.filename_ext))
        try:
            report = export_facs(head_results(head), path)
        except UserError as exc:
            self.report({"ERROR"}, str(exc))
            return {"CANCELLED"}
        if not report.written:
            self.report({"WARNING"}, "the results hold no ARKit weights: only the head rotation "
                                     "is written, every blendshape column is 0")
        elif report.missing:
            self.report({"WARNING"}, f"{len(report.missing)} ARKit channel(s) not tracked, "
                                     f"written as 0: {', '.join(report.missing)}")
        self.report({"INFO"}, f"wrote {report.rows} rows ({len(report.written)} of 52 ARKit "
                              f"channels) to {path}")
        return {"FINISHED"}
