"""Writing F-curves in bulk (Blender 5 actions: slots and channelbags)."""

from __future__ import annotations

from collections.abc import Callable

import bpy
import numpy as np
from bpy_extras import anim_utils
from mathutils import Matrix


def new_channelbag(owner: bpy.types.ID, id_type: str, action_name: str,
                   ) -> tuple[bpy.types.Action, bpy.types.ActionChannelbag]:
    """A new action assigned to `owner` (whose ID type is `id_type`, e.g. "OBJECT", "KEY") through
    a slot of its own; returns the action and the channelbag its F-curves go into."""
    action = bpy.data.actions.new(action_name)
    slot = action.slots.new(id_type=id_type, name=owner.name)
    animation = owner.animation_data_create()
    animation.action = action
    animation.action_slot = slot
    return action, anim_utils.action_ensure_channelbag_for_slot(action, slot)


def continuous_quaternions(quaternions: np.ndarray) -> np.ndarray:
    """(N, 4) with signs flipped so consecutive quaternions stay on one hemisphere (no spins
    between keys)."""
    out = quaternions.copy()
    for i in range(1, len(out)):
        if np.dot(out[i], out[i - 1]) < 0:
            out[i] = -out[i]
    return out


def set_keys(curve: bpy.types.FCurve, frames: list | np.ndarray, values: list | np.ndarray,
             interpolation: str) -> None:
    """Add keyframes (frame, value) to `curve` in one call, all with `interpolation`."""
    curve.keyframe_points.add(len(frames))
    coords = np.column_stack([frames, values]).astype(np.float32).ravel()
    curve.keyframe_points.foreach_set("co", coords)
    curve.keyframe_points.foreach_set("interpolation", [
        bpy.types.Keyframe.bl_rna.properties["interpolation"].enum_items[interpolation].value
    ] * len(frames))
    curve.update()


def set_transform_keys(channelbag: bpy.types.ActionChannelbag, path: str,
                       frames: list | np.ndarray, matrices: np.ndarray,
                       group: bpy.types.ActionGroup | None = None) -> None:
    """Linear location and quaternion keys of rigid matrices (F, 4, 4) at `frames` on the
    transform at `path` ("" for an object's own, or e.g. 'pose.bones["head"]')."""
    locations, rotations = [], []
    for matrix in matrices:
        location, rotation, _ = Matrix(np.asarray(matrix).tolist()).decompose()
        locations.append(tuple(location))
        rotations.append(tuple(rotation))
    columns = {"location": np.array(locations), "rotation_quaternion":
               continuous_quaternions(np.array(rotations))}
    prefix = f"{path}." if path else ""
    for name, values in columns.items():
        for index in range(values.shape[1]):
            curve = channelbag.fcurves.new(prefix + name, index=index)
            if group is not None:
                curve.group = group
            set_keys(curve, frames, values[:, index], "LINEAR")


FACEADAPT_GROUP = "FaceAdapt"  # F-curve group of the channels an import writes


class ActionEdit:
    """FaceAdapt's channels of one animated datablock, rewritten without touching anyone else's.

    The edit works on a copy of the datablock's action (a new action when it has none): the
    channels `is_ours(data_path)` are removed from the copy and the new ones added there, so the
    user's own F-curves in that action, their keyframes and the action's name survive an
    import. `commit` assigns the copy and removes the original if nothing else uses it;
    `discard` removes the copy and leaves the original as it was.
    """

    def __init__(self, owner: bpy.types.ID, id_type: str, new_name: str,
                 is_ours: Callable[[str], bool]) -> None:
        self.owner = owner
        animation = owner.animation_data
        self.original = animation.action if animation is not None else None
        if self.original is None:
            self.action = bpy.data.actions.new(new_name)
            self.slot = self.action.slots.new(id_type=id_type, name=owner.name)
        else:
            self.action = self.original.copy()
            wanted = animation.action_slot.identifier if animation.action_slot else None
            self.slot = self.action.slots.get(wanted) if wanted else None
            if self.slot is None:
                self.slot = self.action.slots.new(id_type=id_type, name=owner.name)
        self.channelbag = anim_utils.action_ensure_channelbag_for_slot(self.action, self.slot)
        ours = [c for c in self.channelbag.fcurves if is_ours(c.data_path)]
        # Channels FaceAdapt writes that the user had keyed themselves: replaced, and said so.
        self.replaced_user_channels = sorted({c.data_path for c in ours
                                              if c.group is None or c.group.name != FACEADAPT_GROUP})
        for curve in ours:
            self.channelbag.fcurves.remove(curve)
        self.group = (self.channelbag.groups.get(FACEADAPT_GROUP)
                      or self.channelbag.groups.new(FACEADAPT_GROUP))

    def curve(self, data_path: str, index: int = 0) -> bpy.types.FCurve:
        curve = self.channelbag.fcurves.new(data_path, index=index)
        curve.group = self.group
        return curve

    def commit(self) -> None:
        animation = self.owner.animation_data_create()
        animation.action = self.action
        animation.action_slot = self.slot
        original = self.original
        if original is not None and original.users == 0:
            name = original.name
            bpy.data.actions.remove(original)
            self.action.name = name

    def discard(self) -> None:
        bpy.data.actions.remove(self.action)
