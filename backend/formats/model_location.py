"""Where personal face models live, known to both sides of the process boundary (stdlib only):
the backend writes and resolves them (backend/dam/model_folder.py), the Blender panel offers
their names."""

from __future__ import annotations

import os
import sys
from pathlib import Path

MODELS_VARIABLE = "FACEADAPT_MODELS"
MODEL_JSON = "model.json"


def user_models_dir() -> Path:
    """The user's models folder: $FACEADAPT_MODELS, else `models` in the platform's FaceAdapt
    data folder: $XDG_DATA_HOME/faceadapt (default ~/.local/share/faceadapt) on Linux,
    ~/Library/Application Support/FaceAdapt on macOS, %APPDATA%\\FaceAdapt on Windows. It may
    not exist (no personal models yet)."""
    override = os.environ.get(MODELS_VARIABLE)
    if override:
        return Path(override).expanduser()
    home = Path.home()
    if sys.platform == "win32":
        base = Path(os.environ.get("APPDATA") or home / "AppData" / "Roaming") / "FaceAdapt"
    elif sys.platform == "darwin":
        base = home / "Library" / "Application Support" / "FaceAdapt"
    else:
        base = Path(os.environ.get("XDG_DATA_HOME") or home / ".local" / "share") / "faceadapt"
    return base / "models"


def user_model_names() -> list[str]:
    """The names of the model folders in `user_models_dir()` (those holding model.json),
    sorted; [] when there is none yet."""
    root = user_models_dir()
    if not root.is_dir():
        return []
    return sorted(p.name for p in root.iterdir()
                  if p.is_dir() and not p.name.startswith(".") and (p / MODEL_JSON).is_file())
