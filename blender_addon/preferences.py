"""Add-on preferences: the backend interpreter, the device it computes on, and where batches run."""

from __future__ import annotations

from pathlib import Path

import bpy

from . import backend_python

DEVICE_ITEMS = (("auto", "Auto", "CUDA when available, else CPU"),
                ("cpu", "CPU", "Always the CPU"),
                ("cuda", "CUDA", "An NVIDIA GPU (fails when none is visible)"))

# The extension's package (bl_ext.<repository>.faceadapt): preferences are keyed by it.
EXTENSION_PACKAGE = __package__.rpartition(".")[0]


def get(context: bpy.types.Context) -> FaceAdaptPreferences:
    return context.preferences.addons[EXTENSION_PACKAGE].preferences


def user_directory(create: bool = True) -> Path:
    """The extension's own writable folder (backend venv, exported heads)."""
    return Path(bpy.utils.extension_path_user(EXTENSION_PACKAGE, path="", create=create))


def backend_interpreter(context: bpy.types.Context) -> Path | None:
    prefs = get(context)
    preference = bpy.path.abspath(prefs.backend_python) if prefs.backend_python else ""
    return backend_python.resolve(preference, user_directory() / "venv")


class FaceAdaptPreferences(bpy.types.AddonPreferences):
    bl_idname = EXTENSION_PACKAGE

    backend_python: bpy.props.StringProperty(  # type: ignore[valid-type]
        name="Backend Python",
        description="Python interpreter with FaceAdapt's backend packages (torch...). Empty: the "
                    "venv made by Install Backend, or the project's .venv",
        subtype="FILE_PATH")
    install_python: bpy.props.StringProperty(  # type: ignore[valid-type]
        name="Python for Install Backend",
        description="A Python 3.11 or 3.12 that Install Backend makes the backend's environment "
                    "with. Empty: Blender's own when it is one of those, else one found on this "
                    "computer, else one uv downloads",
        subtype="FILE_PATH")
    device: bpy.props.EnumProperty(name="Device", items=DEVICE_ITEMS, default="auto")  # type: ignore[valid-type]
    ray_address: bpy.props.StringProperty(  # type: ignore[valid-type]
        name="Ray Cluster",
        description="Where Track Strips runs its batch: empty, in the backend process one strip after "
                    "another; 'local', a Ray cluster on this computer; host:port, the head of a running "
                    "cluster (the backend needs the farm extra, requirements-farm.lock)")
    status: bpy.props.StringProperty(name="Status", default="not checked")  # type: ignore[valid-type]

    def draw(self, context: bpy.types.Context) -> None:
        layout = self.layout
        layout.prop(self, "backend_python")
        layout.prop(self, "device")
        layout.prop(self, "ray_address")
        found = backend_interpreter(context)
        layout.label(text=f"Interpreter: {found or 'none found'}")
        row = layout.row()
        row.operator("faceadapt.check_backend")
        row.operator("faceadapt.install_backend")
        layout.prop(self, "install_python")
        layout.label(text=f"Status: {self.status}")
