"""FaceAdapt Blender extension entry point (the extension folder is the repository root).

The add-on, the operators and the backend import each other as the top-level packages
`blender_addon`, `operators` and `backend` (the backend also runs as `python -m backend`
with this folder on PYTHONPATH), so registration puts this folder on `sys.path`.
"""

from __future__ import annotations

import sys
from pathlib import Path

_ROOT = Path(__file__).resolve().parent
_PACKAGES = ("backend", "blender_addon", "operators")


def _import_path() -> None:
    for name in _PACKAGES:
        module = sys.modules.get(name)
        location = getattr(module, "__file__", None) if module else None
        if location and Path(location).resolve().parent.parent != _ROOT:
            raise RuntimeError(f"FaceAdapt cannot load: another add-on already provides a Python "
                               f"package named '{name}' ({location})")
    if str(_ROOT) not in sys.path:
        sys.path.append(str(_ROOT))


def register() -> None:
    _import_path()
    from blender_addon.registration import register as register_addon

    register_addon(__package__ or __name__)


def unregister() -> None:
    from blender_addon.registration import unregister as unregister_addon

    unregister_addon()
