"""The tracking panel's settings, stored with the scene (`scene.faceadapt`)."""

from __future__ import annotations

from pathlib import Path

import bpy

from ..backend.formats.model_location import user_model_names
from .geometry_plan import DEFAULT_MODE, GEOMETRY_MODES
from .track_options import PRESETS, TRACKER_ITEMS, TrackChoices

QUALITY_ITEMS = (*((name, preset.label, preset.describe()) for name, preset in PRESETS.items()),
                 ("custom", "Custom", "The tracker and texture size of the Advanced panel"))
GEOMETRY_ITEMS = tuple((mode, label, text) for mode, (label, text) in GEOMETRY_MODES.items())


def model_suggestions(settings: bpy.types.PropertyGroup, context: bpy.types.Context,
                      edit_text: str) -> list[str]:
    """The Face Model field's list: the shipped model and the personal ones in the user's models
    folder (`python -m backend personalize` writes them there), those containing the typed text."""
    typed = edit_text.strip().lower()
    return [name for name in ("default", *user_model_names()) if typed in name.lower()]


class FaceAdaptSceneSettings(bpy.types.PropertyGroup):
    quality: bpy.props.EnumProperty(  # type: ignore[valid-type]
        name="Quality", items=QUALITY_ITEMS, default="production")
    geometry: bpy.props.EnumProperty(  # type: ignore[valid-type]
        name="Geometry", items=GEOMETRY_ITEMS, default=DEFAULT_MODE,
        description="How the tracked performance becomes geometry on the head")
    setup_render: bpy.props.BoolProperty(  # type: ignore[valid-type]
        name="Set Up Render", default=True,
        description="After import, make F12 render the head over the footage: lights, world, the "
                    "footage composited behind, the sequencer off")
    match_fps: bpy.props.BoolProperty(  # type: ignore[valid-type]
        name="Match Scene Frame Rate", default=False,
        description="When the footage's frame rate differs from the scene's, set the scene's to "
                    "the footage's instead of refusing")
    tracker: bpy.props.EnumProperty(  # type: ignore[valid-type]
        name="Tracker", items=TRACKER_ITEMS, default="adapted")
    texture_size: bpy.props.IntProperty(  # type: ignore[valid-type]
        name="Texture Size", default=512, min=0, max=4096,
        description="Texels of the per-frame textures (0: none)")
    model: bpy.props.StringProperty(  # type: ignore[valid-type]
        name="Face Model", default="", search=model_suggestions, search_options={"SUGGESTION"},
        description="The face model of the DAM trackers: 'default', a personal model's name (the "
                    "list: python -m backend personalize makes them) or a model folder; empty: "
                    "the default")
    use_frame_range: bpy.props.BoolProperty(  # type: ignore[valid-type]
        name="Frame Range", default=False,
        description="Track only these source frames of the footage")
    frame_first: bpy.props.IntProperty(name="First", default=0, min=0)  # type: ignore[valid-type]
    frame_last: bpy.props.IntProperty(name="Last", default=0, min=0)  # type: ignore[valid-type]
    output_folder: bpy.props.StringProperty(  # type: ignore[valid-type]
        name="Output Folder", default="", subtype="DIR_PATH",
        description="Where results folders go; empty: //faceadapt beside the .blend, or the "
                    "extension's user folder for an unsaved file")

    def choices(self) -> TrackChoices:
        return TrackChoices(self.quality, self.tracker, self.texture_size, self.model.strip(),
                            (self.frame_first, self.frame_last) if self.use_frame_range else None)

    def output_base(self) -> Path | None:
        return Path(bpy.path.abspath(self.output_folder)) if self.output_folder.strip() else None


def get(context: bpy.types.Context) -> FaceAdaptSceneSettings:
    return context.scene.faceadapt


def register() -> None:
    bpy.types.Scene.faceadapt = bpy.props.PointerProperty(type=FaceAdaptSceneSettings)


def unregister() -> None:
    del bpy.types.Scene.faceadapt
