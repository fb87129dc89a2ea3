"""FaceAdapt Blender extension entry point (the extension folder is the repository root).

Inside Blender this folder is the package `bl_ext.<repository>.faceadapt`: the add-on, the
operators and the backend's file-format core are its subpackages, imported relatively (as
Blender's glTF add-on does), so no top-level `backend` or `operators` name enters Blender's
process and another add-on's modules of those names cannot shadow ours. The backend runs
in its own process (`python -m backend`, its own interpreter).
"""

from __future__ import annotations

import sys


def register() -> None:
    try:
        from .blender_addon import registration

        registration.register()
    except BaseException:
        # Blender keeps whatever a failed enable imported; dropping it makes the next enable
        # (after the user fixed or upgraded the code) import the code on disk, not stale modules.
        _forget_submodules()
        raise


def unregister() -> None:
    try:
        from .blender_addon import registration

        registration.unregister()
    finally:
        _forget_submodules()


def _forget_submodules() -> None:
    """Drop this package's submodules from the import cache, so enabling the extension again,
    or enabling a newer version installed over this one, imports the code now on disk."""
    prefix = __name__ + "."
    for name in [n for n in sys.modules if n.startswith(prefix)]:
        del sys.modules[name]
