"""Registering FaceAdapt's classes with Blender."""

from __future__ import annotations

import bpy

from ..operators.add_head import FACEADAPT_OT_add_head
from ..operators.backend_setup import FACEADAPT_OT_check_backend, FACEADAPT_OT_install_backend
from ..operators.bake_for_camera import FACEADAPT_OT_bake_for_camera
from ..operators.cancel_job import FACEADAPT_OT_cancel_job
from ..operators.export_facs import FACEADAPT_OT_export_facs_csv
from ..operators.import_results import FACEADAPT_OT_import_results
from ..operators.make_double_model import FACEADAPT_OT_make_double_model
from ..operators.make_personal_model import FACEADAPT_OT_make_personal_model
from ..operators.results_folders import FACEADAPT_OT_remove_results
from ..operators.retarget import FACEADAPT_OT_bake_head_pose, FACEADAPT_OT_retarget_shape_keys
from ..operators.texture_view import FACEADAPT_OT_texture_view
from ..operators.track_footage import FACEADAPT_OT_track_footage
from ..operators.track_strips import FACEADAPT_OT_track_strips
from . import preferences, scene_settings
from .panel import PANELS

CLASSES = (
    preferences.FaceAdaptPreferences,
    scene_settings.FaceAdaptSceneSettings,
    FACEADAPT_OT_add_head,
    FACEADAPT_OT_track_footage,
    FACEADAPT_OT_make_personal_model,
    FACEADAPT_OT_make_double_model,
    FACEADAPT_OT_track_strips,
    FACEADAPT_OT_import_results,
    FACEADAPT_OT_texture_view,
    FACEADAPT_OT_bake_for_camera,
    FACEADAPT_OT_cancel_job,
    FACEADAPT_OT_retarget_shape_keys,
    FACEADAPT_OT_bake_head_pose,
    FACEADAPT_OT_export_facs_csv,
    FACEADAPT_OT_remove_results,
    FACEADAPT_OT_check_backend,
    FACEADAPT_OT_install_backend,
    *PANELS,
)


def register() -> None:
    """Register every class or none: when Blender refuses one, those already registered are
    unregistered, so a failed enable leaves nothing behind and the next enable starts clean
    (without it, the next one fails with "already registered" until Blender restarts)."""
    registered = []
    try:
        for cls in CLASSES:
            bpy.utils.register_class(cls)
            registered.append(cls)
        scene_settings.register()
    except BaseException:
        for cls in reversed(registered):
            bpy.utils.unregister_class(cls)
        raise


def unregister() -> None:
    scene_settings.unregister()
    for cls in reversed(CLASSES):
        bpy.utils.unregister_class(cls)
