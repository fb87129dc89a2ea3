"""A training checkpoint on disk: one safetensors file (never unpickled, so a model folder
someone sends cannot run code on `--resume`).

Tensors: "model.<state name>", "optimizer.<parameter index>.<state name>" (Adam's moments and
step), "torch_rng" (torch's CPU generator state, uint8). Everything else is JSON in the file's
header metadata under "checkpoint": {"format", "step", "elapsed" (seconds), "numpy_rng" (the
numpy bit generator's state), "optimizer": {"param_groups", "state": non-tensor per-parameter
values}, "notes": the trainer's own counters (JSON; absent in older checkpoints)}. One file,
written atomically: the tensors and the step can never disagree.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from ..formats.atomic import atomic_file
from ..formats.errors import BadInput

CHECKPOINT = "checkpoint.safetensors"
# Checkpoints written before safetensors: a pickle, never loaded.
PICKLED_CHECKPOINT = "checkpoint.pt"
CHECKPOINT_FORMAT = 1


@dataclass
class Resumed:
    step: int
    elapsed: float  # seconds of training before the checkpoint
    rng: np.random.Generator  # the sampling generator, where the checkpoint left it
    notes: dict  # what the trainer saved with it (save_checkpoint's `notes`)


def save_checkpoint(path: Path, model: torch.nn.Module, optimizer: torch.optim.Optimizer,
                    step: int, elapsed: float, rng: np.random.Generator,
                    notes: dict | None = None) -> None:
    tensors = {f"model.{k}": v for k, v in model.state_dict().items()}
    optimizer_state = optimizer.state_dict()
    plain_state: dict[str, dict] = {}
    for index, values in optimizer_state["state"].items():
        plain_state[str(index)] = {}
        for key, value in values.items():
            if isinstance(value, torch.Tensor):
                tensors[f"optimizer.{index}.{key}"] = value
            else:
                plain_state[str(index)][key] = value
    tensors["torch_rng"] = torch.get_rng_state()
    document = {"format": CHECKPOINT_FORMAT, "step": step, "elapsed": elapsed,
                "numpy_rng": rng.bit_generator.state, "notes": notes or {},
                "optimizer": {"param_groups": optimizer_state["param_groups"], "state": plain_state}}
    with atomic_file(path) as tmp:
        save_file({k: v.detach().cpu().contiguous() for k, v in tensors.items()}, str(tmp),
                  metadata={"checkpoint": json.dumps(document, allow_nan=False)})


def load_checkpoint(folder: Path, model: torch.nn.Module,
                    optimizer: torch.optim.Optimizer) -> Resumed | None:
    """Restore model, optimiser and torch's RNG from `folder`'s checkpoint (None when it has
    none); BadInput naming the file when it is unreadable, pickled or from another model."""
    path = Path(folder) / CHECKPOINT
    if not path.is_file():
        old = Path(folder) / PICKLED_CHECKPOINT
        if old.is_file():
            raise BadInput(f"checkpoint {old} is pickled (an older FaceAdapt wrote it); it is not "
                           "loaded because loading a pickle can run code: delete it to start over")
        return None
    try:
        with safe_open(str(path), framework="pt") as file:
            document = json.loads((file.metadata() or {})["checkpoint"])
            tensors = {k: file.get_tensor(k) for k in file.keys()}
        if document["format"] != CHECKPOINT_FORMAT:
            raise ValueError(f"format {document['format']}, this FaceAdapt reads {CHECKPOINT_FORMAT}")
        model.load_state_dict({k.removeprefix("model."): v for k, v in tensors.items()
                               if k.startswith("model.")})
        state: dict[int, dict] = {int(i): dict(values)
                                  for i, values in document["optimizer"]["state"].items()}
        for key, value in tensors.items():
            if key.startswith("optimizer."):
                _, index, name = key.split(".", 2)
                state.setdefault(int(index), {})[name] = value
        optimizer.load_state_dict({"state": state,
                                   "param_groups": document["optimizer"]["param_groups"]})
        rng = np.random.default_rng()
        rng.bit_generator.state = document["numpy_rng"]
        torch.set_rng_state(tensors["torch_rng"])
        return Resumed(int(document["step"]), float(document["elapsed"]), rng,
                       dict(document.get("notes", {})))
    except (OSError, RuntimeError, SafetensorError, ValueError, KeyError, TypeError) as exc:
        raise BadInput(f"checkpoint {path} cannot be loaded ({type(exc).__name__}: {exc}); delete "
                       "it to start over") from exc
