"""What must hold of a head before FaceAdapt changes it (checked before any long work)."""

from __future__ import annotations

import bpy

from .backend_job import UserError


def require_editable_head(context: bpy.types.Context, head: bpy.types.Object) -> None:
    """UserError saying what to do when `head`, its mesh or its rig cannot be changed now: not
    in Object Mode, linked from a library or a library override, or otherwise not editable."""
    if head.mode != "OBJECT":
        raise UserError(f"'{head.name}' is in {head.mode.replace('_', ' ').title()} Mode: switch "
                        "to Object Mode (Tab) and try again")
    if context.mode != "OBJECT":
        raise UserError(f"Blender is in {context.mode.replace('_', ' ').title()} mode: switch to "
                        "Object Mode (Tab) and try again")
    rig = head.parent
    for block, what in ((head, "object"), (head.data, "mesh"), (rig, "rig")):
        if block is None:
            continue
        if block.library is not None:
            raise UserError(f"the {what} '{block.name}' is linked from {block.library.filepath}: "
                            "make it local (Object > Relations > Make Local) to track onto it")
        if block.override_library is not None or not block.is_editable:
            raise UserError(f"the {what} '{block.name}' is a library override or locked: make it "
                            "local and editable to track onto it")
    for block in (head.data.shape_keys, rig):
        require_not_tweaking(block)


def require_not_tweaking(block: bpy.types.ID | None) -> None:
    """An action being tweaked in the NLA cannot be replaced: UserError saying how to leave."""
    animation = getattr(block, "animation_data", None) if block is not None else None
    if animation is not None and animation.use_tweak_mode:
        raise UserError(f"the animation of '{block.name}' is in NLA tweak mode: leave it (Tab in "
                        "the Nonlinear Animation editor) and try again")
