"""Retarget onto Selected and Bake Head Pose to Bone: a FaceAdapt head's tracked performance
(the results directory last imported onto it) onto other characters of any topology.

The plans are computed by blender_addon/retarget_plan.py; this module only reads the head's
results and writes keys. Keys go into the target's action through keyframes.ActionEdit: only
the channels written are replaced, the user's other F-curves survive, and nothing changes when
anything fails.
"""

from __future__ import annotations

import json
from pathlib import Path

import bpy
import numpy as np

from ..backend.formats.errors import BadInput
from ..backend.formats.results_dir import Results, read_results
from ..blender_addon.backend_job import UserError
from ..blender_addon.head_builder import selected_head
from ..blender_addon.head_checks import require_not_tweaking
from ..blender_addon.keyframes import ActionEdit, set_keys
from ..blender_addon.retarget_plan import RetargetPlan, bone_pose_keys, format_report, plan_retarget
from ..blender_addon.scene_import import RESULTS_PROPERTY, SOURCE_ZERO_PROPERTY

REPORT_PROPERTY = "faceadapt_retarget_report"  # on each target object: the last retarget, JSON


def head_results(head: bpy.types.Object) -> Results:
    """The results directory last imported onto `head`, read; UserError when there is none."""
    directory = head.get(RESULTS_PROPERTY)
    if not directory:
        raise UserError(f"'{head.name}' has no tracked performance: import results onto the head "
                        "first")
    try:
        return read_results(Path(bpy.path.abspath(str(directory))))
    except BadInput as exc:
        raise UserError(f"the results imported onto '{head.name}' cannot be read: {exc}") from exc


def scene_frames(head: bpy.types.Object, results: Results) -> np.ndarray:
    """(F,) the scene frame of each tracked frame, where the import placed them."""
    if SOURCE_ZERO_PROPERTY not in head:
        raise UserError(f"'{head.name}' does not say where its performance plays: import results "
                        "onto the head first")
    return results.frames.astype(np.int64) + int(head[SOURCE_ZERO_PROPERTY])


def tracked_weights(results: Results) -> tuple[np.ndarray, list[str]]:
    """(F, K) ARKit weights and their names; UserError when the results hold none."""
    if "weights" not in results.tracking:
        raise UserError(f"the results in {results.directory} hold no ARKit weights: track with a "
                        "tracker that solves them")
    return results.tracking["weights"], [str(n) for n in results.tracking["weight_names"]]


def key_value_path(name: str) -> str:
    return f'key_blocks["{bpy.utils.escape_identifier(name)}"].value'


def retarget_targets(context: bpy.types.Context, head: bpy.types.Object) -> list[bpy.types.Object]:
    """The selected meshes other than the head that have shape keys besides their basis, one per
    mesh (linked duplicates share their shape keys: keyed once)."""
    targets: dict[str, bpy.types.Object] = {}
    for obj in context.selected_objects:
        if (obj is not head and obj.type == "MESH" and obj.data is not head.data
                and obj.data.shape_keys is not None and len(obj.data.shape_keys.key_blocks) > 1):
            targets.setdefault(obj.data.shape_keys.name, obj)
    return list(targets.values())


def target_key_names(target: bpy.types.Object) -> list[str]:
    """The target's shape keys that can be driven: all but its reference (basis) key."""
    key = target.data.shape_keys
    return [block.name for block in key.key_blocks if block != key.reference_key]


class FACEADAPT_OT_retarget_shape_keys(bpy.types.Operator):
    """Key the selected meshes' shape keys named like ARKit's (jawOpen, EyeBlink_L,
    eye_blink_left, ...) with the active FaceAdapt head's tracked weights; any topology"""

    bl_idname = "faceadapt.retarget_shape_keys"
    bl_label = "Retarget onto Selected"
    bl_options = {"REGISTER", "UNDO"}

    lower: bpy.props.FloatProperty(  # type: ignore[valid-type]
        name="Lower Bound", default=0.0, soft_min=-1.0, soft_max=1.0,
        description="Each shape key's value is kept at or above this")
    upper: bpy.props.FloatProperty(  # type: ignore[valid-type]
        name="Upper Bound", default=1.0, soft_min=0.0, soft_max=2.0,
        description="Each shape key's value is kept at or below this")
    smoothing: bpy.props.IntProperty(  # type: ignore[valid-type]
        name="Smoothing", default=0, min=0, soft_max=15,
        description="Frames of a centred moving average over the tracked weights (0: none); "
                    "applied before the bounds")

    @classmethod
    def poll(cls, context: bpy.types.Context) -> bool:
        # Targets are checked on execute, which says what to select (a greyed button would not).
        return selected_head(context) is not None

    def execute(self, context: bpy.types.Context) -> set[str]:
        head = selected_head(context)
        if head is None:
            self.report({"ERROR"}, "make the FaceAdapt head the active object, with the meshes "
                                   "to retarget onto selected")
            return {"CANCELLED"}
        try:
            self.retarget(context, head)
        except UserError as exc:
            self.report({"ERROR"}, str(exc))
            return {"CANCELLED"}
        return {"FINISHED"}

    def retarget(self, context: bpy.types.Context, head: bpy.types.Object) -> None:
        targets = retarget_targets(context, head)
        if not targets:
            raise UserError("select the meshes to retarget onto (with shape keys) together with "
                            f"'{head.name}', the head active")
        for target in targets:
            keys = target.data.shape_keys
            if target.library is not None or keys.library is not None or not keys.is_editable:
                raise UserError(f"the shape keys of '{target.name}' are linked from a library: "
                                "make it local to retarget onto it")
            require_not_tweaking(keys)
        results = head_results(head)
        frames = scene_frames(head, results)
        weights, names = tracked_weights(results)
        plans: dict[str, RetargetPlan] = {}
        lower, upper = round(self.lower, 6), round(self.upper, 6)  # float32 props: 0.1, not 0.100000001
        try:
            for target in targets:
                plans[target.name] = plan_retarget(weights, names, target_key_names(target),
                                                   lower, upper, self.smoothing)
        except ValueError as exc:
            raise UserError(str(exc)) from exc
        driven = [t for t in targets if plans[t.name].values]
        if not driven:
            examples = ", ".join(target_key_names(targets[0])[:5])
            raise UserError(f"no shape key of {', '.join(repr(t.name) for t in targets)} is named "
                            f"like an ARKit channel (jawOpen, eyeBlinkLeft, ...; found {examples})")
        edits = []
        try:
            for target in driven:
                plan = plans[target.name]
                paths = {key_value_path(name) for name in plan.values}
                key = target.data.shape_keys
                edit = ActionEdit(key, "KEY", f"{key.name} FaceAdapt", lambda p, paths=paths: p in paths)
                edits.append(edit)
                for name, values in plan.values.items():
                    set_keys(edit.curve(key_value_path(name)), frames, values, "LINEAR")
        except Exception:
            for edit in edits:
                edit.discard()
            raise
        for target, edit in zip(driven, edits, strict=True):
            edit.commit()
            plan = plans[target.name]
            report = {"results": str(results.directory), "head": head.name,
                      "lower": lower, "upper": upper, **plan.report()}
            target[REPORT_PROPERTY] = json.dumps(report)
            print(f"FaceAdapt retarget onto '{target.name}':\n{format_report(report)}")
            for path in edit.replaced_user_channels:
                self.report({"WARNING"}, f"'{target.name}': replaced your own keys on {path}")
            self.report({"INFO"}, f"'{target.name}': {plan.summary()} (table in its "
                                  f"'{REPORT_PROPERTY}' property)")
        for target in targets:
            if target not in driven:
                self.report({"WARNING"}, f"'{target.name}': no shape key named like an ARKit "
                                         "channel, left as it was")


class FACEADAPT_OT_bake_head_pose(bpy.types.Operator):
    """Key a bone of any armature with the active FaceAdapt head's tracked rotation since its
    first frame, in the armature's axes (a character facing -Y, +Z up)"""

    bl_idname = "faceadapt.bake_head_pose"
    bl_label = "Bake Head Pose to Bone"
    bl_options = {"REGISTER", "UNDO"}

    armature: bpy.props.StringProperty(  # type: ignore[valid-type]
        name="Armature", description="The armature object whose bone is keyed")
    bone: bpy.props.StringProperty(  # type: ignore[valid-type]
        name="Bone", description="The bone that turns as the tracked head turns")
    location: bpy.props.BoolProperty(  # type: ignore[valid-type]
        name="Location", default=False,
        description="Also move the bone as the head's pivot moved (metres, in the armature's "
                    "axes, divided by the armature's scale)")

    @classmethod
    def poll(cls, context: bpy.types.Context) -> bool:
        return selected_head(context) is not None

    def invoke(self, context: bpy.types.Context, event: bpy.types.Event) -> set[str]:
        head = selected_head(context)
        if not self.armature:  # a selected armature other than the head's own rig
            rig = head.parent if head is not None else None
            armature = next((o for o in context.selected_objects
                             if o.type == "ARMATURE" and o is not rig), None)
            if armature is not None:
                self.armature = armature.name
                if not self.bone and armature.data.bones.active is not None:
                    self.bone = armature.data.bones.active.name
        return context.window_manager.invoke_props_dialog(self)

    def draw(self, context: bpy.types.Context) -> None:
        layout = self.layout
        layout.prop_search(self, "armature", bpy.data, "objects", icon="ARMATURE_DATA")
        armature = bpy.data.objects.get(self.armature)
        if armature is not None and armature.type == "ARMATURE":
            layout.prop_search(self, "bone", armature.data, "bones", icon="BONE_DATA")
        else:
            layout.prop(self, "bone")
        layout.prop(self, "location")

    def execute(self, context: bpy.types.Context) -> set[str]:
        head = selected_head(context)
        if head is None:
            self.report({"ERROR"}, "make the FaceAdapt head the active object")
            return {"CANCELLED"}
        try:
            self.bake(head)
        except UserError as exc:
            self.report({"ERROR"}, str(exc))
            return {"CANCELLED"}
        return {"FINISHED"}

    def bake(self, head: bpy.types.Object) -> None:
        armature = bpy.data.objects.get(self.armature)
        if armature is None or armature.type != "ARMATURE":
            raise UserError(f"choose the armature to bake onto ('{self.armature}' is no armature "
                            "object)")
        pose_bone = armature.pose.bones.get(self.bone)
        if pose_bone is None:
            raise UserError(f"'{armature.name}' has no bone '{self.bone}'")
        results = head_results(head)
        frames = scene_frames(head, results)
        rest = np.array([list(row) for row in pose_bone.bone.matrix_local])
        scale = float(np.mean(list(armature.matrix_world.to_scale())))
        try:
            keys = bone_pose_keys(results.head_pose, rest, 1.0 / scale if scale > 0 else 1.0,
                                  self.location)
        except ValueError as exc:
            raise UserError(f"'{armature.name}' bone '{pose_bone.name}': {exc}") from exc
        prefix = f'pose.bones["{bpy.utils.escape_identifier(pose_bone.name)}"]'
        columns = {f"{prefix}.rotation_quaternion": keys.quaternions}
        if self.location:
            columns[f"{prefix}.location"] = keys.locations
        edit = ActionEdit(armature, "OBJECT", f"{armature.name} FaceAdapt",
                          lambda path: path in columns)
        try:
            for path, values in columns.items():
                for index in range(values.shape[1]):
                    set_keys(edit.curve(path, index), frames, values[:, index], "LINEAR")
        except Exception:
            edit.discard()
            raise
        edit.commit()
        if pose_bone.rotation_mode != "QUATERNION":
            self.report({"INFO"}, f"bone '{pose_bone.name}' now rotates in Quaternion mode (was "
                                  f"{pose_bone.rotation_mode})")
            pose_bone.rotation_mode = "QUATERNION"
        for path in edit.replaced_user_channels:
            self.report({"WARNING"}, f"replaced your own keys on {path}")
        turned = np.degrees(2 * np.arccos(np.clip(np.abs(keys.quaternions[:, 0]), 0, 1))).max()
        self.report({"INFO"}, f"keyed '{armature.name}' bone '{pose_bone.name}' on {len(frames)} "
                              f"frames ({frames[0]}-{frames[-1]}), turning up to {turned:.0f}°"
                              + (" and moving" if self.location else ""))
