"""A trained model on disk: model.json (schema, architecture, training settings, provenance,
metrics) + weights.safetensors (float16 tensors; nothing in a model folder is unpickled, so a
folder someone sends cannot run code)."""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from ..formats.atomic import atomic_file
from ..formats.errors import BadInput
from .model import DamArchitecture, DeepAppearanceModel

MODEL_SCHEMA = 1
WEIGHTS = "weights.safetensors"
# Models written before safetensors: a pickle, never loaded (see refuse_pickled_weights).
PICKLED_WEIGHTS = "weights.pt"


def save_model(folder: Path, model: DeepAppearanceModel, info: dict) -> None:
    """Write weights (float16, to stay small) and model.json, each atomically."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    state = {k: (v.half() if v.is_floating_point() else v).contiguous()
             for k, v in model.state_dict().items()}
    with atomic_file(folder / WEIGHTS) as tmp:
        save_file(state, str(tmp))
    document = {"schema": MODEL_SCHEMA, "architecture": model.config.as_dict(),
                "num_vertices": model.num_vertices, **info}
    with atomic_file(folder / "model.json") as tmp:
        tmp.write_text(json.dumps(document, indent=1) + "\n")


def read_model_info(folder: Path) -> dict:
    path = Path(folder) / "model.json"
    if not path.is_file():
        raise BadInput(f"{folder} is not a FaceAdapt model folder (no model.json)")
    try:
        document = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise BadInput(f"{path} is not valid JSON ({exc})") from exc
    if document.get("schema") != MODEL_SCHEMA:
        raise BadInput(f"{path}: model schema {document.get('schema')}, this FaceAdapt reads "
                       f"schema {MODEL_SCHEMA}; retrain it with `python -m backend train-dam`")
    return document


def architecture_of(info: dict, path: Path) -> DamArchitecture:
    """The architecture model.json records ("architecture"; models written before the split
    kept it with the training settings under "config")."""
    recorded = info.get("architecture", info.get("config"))
    if not isinstance(recorded, dict):
        raise BadInput(f"{path} records no architecture; retrain with `python -m backend train-dam`")
    names = {f for f in DamArchitecture.__dataclass_fields__}
    try:
        return DamArchitecture(**{k: v for k, v in recorded.items() if k in names})
    except TypeError as exc:
        raise BadInput(f"{path}: architecture {recorded} is unusable ({exc})") from exc


def load_model(folder: Path, device: str = "cpu") -> tuple[DeepAppearanceModel, dict]:
    """(model in eval mode on `device`, model.json); BadInput for anything unreadable."""
    info = read_model_info(folder)
    model = DeepAppearanceModel(architecture_of(info, Path(folder) / "model.json"),
                                int(info["num_vertices"]))
    path = Path(folder) / WEIGHTS
    if not path.is_file():
        refuse_pickled_weights(Path(folder))
    try:
        state = load_file(path)
        model.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in state.items()})
    except (OSError, RuntimeError, SafetensorError) as exc:
        raise BadInput(f"{path} cannot be loaded ({type(exc).__name__}: {exc}); the file is "
                       "truncated, not safetensors or from another model: retrain or restore it"
                       ) from exc
    return model.to(device).eval(), info


def refuse_pickled_weights(folder: Path) -> None:
    """BadInput for a folder without weights.safetensors. A weights.pt (older FaceAdapt) is a
    pickle, which can run code when loaded: it is never loaded here; the message says how its
    owner converts it, for a file they trust."""
    old = folder / PICKLED_WEIGHTS
    if not old.is_file():
        raise BadInput(f"{folder / WEIGHTS} does not exist; retrain the model with "
                       "`python -m backend train-dam` or restore the file")
    raise BadInput(
        f"{old} is a pickled weights file from an older FaceAdapt; it is not loaded because "
        f"loading a pickle can run code. If you trust where it came from, convert it to "
        f"{WEIGHTS} (docs/dam.md): python -c \"import sys, torch, safetensors.torch as s; "
        f"s.save_file(torch.load(sys.argv[1], weights_only=True), sys.argv[2])\" "
        f"'{old}' '{folder / WEIGHTS}'; otherwise retrain it with `python -m backend train-dam`")


@torch.no_grad()
def decode(model: DeepAppearanceModel, z: torch.Tensor,
           view_dir: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The decoding API: z (B, Z), unit view directions (B, 3) in head space ->
    (vertices (B, V, 3) head space metres, texture (B, 3, S, S) in [0, 1])."""
    device = next(model.parameters()).device
    z, view_dir = z.to(device), view_dir.to(device)
    return model.decode_vertices(z), model.decode_texture_for_view(z, view_dir).clamp(0, 1)
