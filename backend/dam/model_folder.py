"""A model folder (DESIGN.md "Where things live"): everything one face needs.

    model.json            schema, architecture, training settings, provenance, metrics,
                          topology_hash and "head" (the head file's name, "head.npz")
    weights.safetensors   the DAM (float16 tensors)
    head.npz              the head the DAM was trained on (DESIGN.md head-file schema)
    encoder.json          the image encoder's settings and metrics (backend/encoder/), optional
    encoder.safetensors   its weights

Nothing in a model folder is unpickled, so a folder someone sends cannot run code. Models are
found by `resolve_model`: "default" is the shipped folder (backend/models/default), a path is
that folder, a bare name is a folder in the user's models folder (`user_models_dir`:
$FACEADAPT_MODELS, else the platform's FaceAdapt data folder, e.g.
~/.local/share/faceadapt/models on Linux). `python -m backend models` lists them.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from ..config_parser import report_option
from ..events import EventSink
from ..formats.atomic import atomic_file
from ..formats.errors import BadInput
from ..formats.file_digest import file_digest
from ..formats.head_file import HeadAsset, load_head, save_head
from ..formats.model_location import MODEL_JSON, MODELS_VARIABLE, user_models_dir
from .model import DamArchitecture, DeepAppearanceModel

MODEL_SCHEMA = 1
WEIGHTS = "weights.safetensors"
# Models written before safetensors: a pickle, never loaded (see refuse_pickled_weights).
PICKLED_WEIGHTS = "weights.pt"
HEAD = "head.npz"
ENCODER_JSON = "encoder.json"
ENCODER_WEIGHTS = "encoder.safetensors"
DEFAULT_MODEL_NAME = "default"
DEFAULT_MODEL = Path(__file__).resolve().parent.parent / "models" / DEFAULT_MODEL_NAME


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


# --- where models live ----------------------------------------------------------------------

def _looks_like_path(spec: str) -> bool:
    separators = {"/", os.sep, os.altsep or "/"}
    return any(c in spec for c in separators) or spec.startswith((".", "~"))


def model_destination(name_or_path: str) -> Path:
    """Where a model named on the command line is written: a path (holding a separator, or
    starting with "." or "~") is that folder; a bare name is that folder in `user_models_dir()`,
    where `--model NAME` and the Blender panel's model list find it."""
    spec = str(name_or_path).strip()
    if not spec or spec == DEFAULT_MODEL_NAME:
        raise BadInput(f"--out {spec!r}: name the model (e.g. the actor's name) or give a folder; "
                       f"'{DEFAULT_MODEL_NAME}' is the shipped model's name")
    return Path(spec).expanduser() if _looks_like_path(spec) else user_models_dir() / spec


def resolve_model(name_or_path: str) -> Path:
    """The model folder `name_or_path` names: "default" -> the shipped backend/models/default;
    a path (holding a separator, or starting with "." or "~") -> that folder; a bare name -> that
    folder in `user_models_dir()`, else a folder of that name in the working directory.
    BadInput when it is no model folder (no model.json), listing the models there are."""
    spec = str(name_or_path).strip()
    if not spec:
        raise BadInput("--model is empty; pass 'default', a model name or a model folder")
    if spec == DEFAULT_MODEL_NAME:
        folder = DEFAULT_MODEL
    elif _looks_like_path(spec):
        folder = Path(spec).expanduser()
    else:
        folder = user_models_dir() / spec
        if not folder.exists() and Path(spec).is_dir():
            folder = Path(spec)
        elif not folder.exists():
            names = [entry.name for entry in list_models()]
            raise BadInput(f"--model {spec}: no such model; models are {', '.join(names)} "
                           f"(`python -m backend models`; personal models live in "
                           f"{user_models_dir()}, ${MODELS_VARIABLE} moves them), or pass a "
                           "model folder's path")
    if not folder.is_dir():
        raise BadInput(f"--model {spec}: {folder} is not a folder; pass 'default', a model name "
                       "(`python -m backend models`) or a model folder")
    if not (folder / MODEL_JSON).is_file():
        raise BadInput(f"--model {spec}: {folder} is not a FaceAdapt model folder (no "
                       f"{MODEL_JSON}); train one with `python -m backend train-dam`")
    return folder


def _head_file_of(folder: Path, info: dict) -> Path:
    """The head file model.json names ("head", default head.npz): a plain file name inside
    the folder, never a path out of it (a folder someone sends)."""
    name = info.get("head", HEAD)
    if not isinstance(name, str) or not name or Path(name).name != name or name in (".", ".."):
        raise BadInput(f"{folder / MODEL_JSON}: field 'head' must name a file inside the model "
                       f"folder (e.g. \"{HEAD}\"), got {name!r}")
    return folder / name


def save_model_head(folder: Path, head: HeadAsset) -> None:
    """Write the head a model was trained on into its folder (head.npz) and name it in
    model.json ("head"); refuses a head whose topology is not the model's."""
    folder = Path(folder)
    info = read_model_info(folder)
    _check_head_topology(folder, info, head, str(folder / HEAD))
    save_head(head, folder / HEAD)
    if info.get("head") != HEAD:
        info["head"] = HEAD
        with atomic_file(folder / MODEL_JSON) as tmp:
            tmp.write_text(json.dumps(info, indent=1) + "\n")


def _check_head_topology(folder: Path, info: dict, head: HeadAsset, source: str) -> None:
    expected = info.get("topology_hash")
    if not isinstance(expected, str) or not expected:
        raise BadInput(f"{folder / MODEL_JSON} records no topology_hash, so its head cannot be "
                       "checked; retrain the model with `python -m backend train-dam`")
    if head.topology_hash != expected or head.num_vertices != int(info.get("num_vertices", -1)):
        raise BadInput(
            f"head file {source} (topology {head.topology_hash}, {head.num_vertices} vertices) "
            f"is not the head of the model in {folder} (model.json: topology {expected}, "
            f"{info.get('num_vertices')} vertices); restore the model's own head.npz")


def load_model_head(folder: Path) -> HeadAsset:
    """The head a model folder carries (model.json "head", default head.npz), checked against
    model.json's topology_hash and num_vertices; BadInput when missing or another head."""
    folder = Path(folder)
    info = read_model_info(folder)
    path = _head_file_of(folder, info)
    if not path.is_file():
        raise BadInput(f"model folder {folder} has no head file ({path.name}): a model carries "
                       "the head it was trained on; export it with `python -m backend export-head "
                       f"--out {path}` from the head the model was trained on")
    head = load_head(path)
    _check_head_topology(folder, info, head, str(path))
    return head


def model_id(folder: Path) -> str:
    """16 hex digits of SHA-256 over the DAM weights file: which decoder a latent belongs to
    (results record it, so a latent is never decoded by another model of the same topology)."""
    path = Path(folder) / WEIGHTS
    if not path.is_file():
        refuse_pickled_weights(Path(folder))
    return file_digest(path)


def model_record(spec: str, folder: Path) -> dict[str, str]:
    """What result.json records of the DAM a tracker used (its field "dam_model"): the --model
    spec, the folder and `model_id`; bake-textures decodes the results' latent with it."""
    return {"spec": str(spec), "path": str(Path(folder).resolve()), "weights": model_id(folder)}


# --- listing --------------------------------------------------------------------------------

class ModelEntry(NamedTuple):
    """One model as `list_models` reports it; summary: see `summarise_model`."""

    name: str
    path: Path
    summary: dict[str, Any]


def summarise_model(folder: Path) -> dict[str, Any]:
    """What a model folder holds, read without loading the networks: head_topology, vertices,
    latent, texture_size, dam (weights.safetensors present), encoder (encoder.json present),
    head (head.npz present and the model's), metrics (model.json's), encoder_metrics
    (encoder.json's "metrics"), problems (what makes it unusable or partial, in words)."""
    folder = Path(folder)
    summary: dict[str, Any] = {"head_topology": None, "vertices": None, "latent": None,
                               "texture_size": None, "dam": False, "encoder": False,
                               "head": False, "metrics": {}, "encoder_metrics": {},
                               "problems": []}
    problems: list[str] = summary["problems"]
    try:
        info = read_model_info(folder)
    except BadInput as exc:
        problems.append(exc.message)
        return summary
    architecture = info.get("architecture", info.get("config"))
    summary.update(head_topology=info.get("topology_hash"), vertices=info.get("num_vertices"),
                   latent=architecture.get("latent") if isinstance(architecture, dict) else None,
                   texture_size=(architecture.get("texture_size")
                                 if isinstance(architecture, dict) else None),
                   metrics=info.get("metrics") if isinstance(info.get("metrics"), dict) else {})
    if (folder / WEIGHTS).is_file():
        summary["dam"] = True
    elif (folder / PICKLED_WEIGHTS).is_file():
        problems.append(f"DAM weights are a pickle ({PICKLED_WEIGHTS}), never loaded: convert "
                        f"them to {WEIGHTS} (docs/dam.md) or retrain")
    else:
        problems.append(f"no DAM weights ({WEIGHTS})")
    try:
        load_model_head(folder)
        summary["head"] = True
    except BadInput as exc:
        problems.append(exc.message)
    encoder = folder / ENCODER_JSON
    if encoder.is_file():
        summary["encoder"] = True
        try:
            document = json.loads(encoder.read_text())
        except (OSError, ValueError) as exc:
            problems.append(f"{encoder} cannot be read as JSON ({exc})")
            document = {}
        metrics = document.get("metrics") if isinstance(document, dict) else None
        summary["encoder_metrics"] = metrics if isinstance(metrics, dict) else {}
        if not (folder / ENCODER_WEIGHTS).is_file():
            problems.append(f"{ENCODER_JSON} without its weights ({ENCODER_WEIGHTS})")
    return summary


def list_models() -> list[ModelEntry]:
    """The shipped default model, then every folder in `user_models_dir()` (sorted by name),
    each with its summary; a user folder named "default" is listed but reported as shadowed."""
    entries = [ModelEntry(DEFAULT_MODEL_NAME, DEFAULT_MODEL, summarise_model(DEFAULT_MODEL))]
    root = user_models_dir()
    if root.is_dir():
        for folder in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
            summary = summarise_model(folder)
            if folder.name == DEFAULT_MODEL_NAME:
                summary["problems"].append("shadowed by the shipped default model: --model "
                                           f"default never picks it; rename it or pass {folder}")
            entries.append(ModelEntry(folder.name, folder, summary))
    return entries


def _scalar_metrics(metrics: dict[str, Any], prefix: str = "") -> dict[str, float]:
    """Numbers of a metrics dict, nested dicts flattened to dotted keys."""
    flat: dict[str, float] = {}
    for key, value in metrics.items():
        if isinstance(value, dict):
            flat.update(_scalar_metrics(value, f"{prefix}{key}."))
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            flat[f"{prefix}{key}"] = value
    return flat


# The DAM figures the table shows (docs/dam.md explains them); everything is in --json.
_DAM_KEY_METRICS = (("vertex_error_mm.mean", "vertex {:.2f} mm"),
                    ("rendered_psnr_db", "PSNR {:.1f} dB"))


def key_metrics(summary: dict[str, Any]) -> str:
    """One line of the figures that matter: the DAM's held-out vertex error and rendered PSNR,
    then the encoder's metrics (its first four numbers)."""
    dam = _scalar_metrics(summary["metrics"])
    parts = [text.format(dam[key]) for key, text in _DAM_KEY_METRICS if key in dam]
    encoder = _scalar_metrics(summary["encoder_metrics"])
    parts += [f"encoder {key} {value:.3g}" for key, value in list(encoder.items())[:4]]
    return "; ".join(parts) or "-"


def models_table(entries: list[ModelEntry]) -> str:
    """The human listing: one row per model, then its problems indented beneath it."""
    header = ("name", "topology", "vertices", "latent", "DAM", "encoder", "metrics", "path")
    rows = [header]
    for entry in entries:
        s = entry.summary
        rows.append((entry.name, str(s["head_topology"] or "?"), str(s["vertices"] or "?"),
                     str(s["latent"] or "?"), "yes" if s["dam"] else "no",
                     "yes" if s["encoder"] else "no", key_metrics(s), str(entry.path)))
    widths = [max(len(row[i]) for row in rows) for i in range(len(header) - 1)]
    lines = []
    for row, entry in zip(rows, [None, *entries], strict=True):
        lines.append("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=False))
                     + "  " + row[-1])
        for problem in (entry.summary["problems"] if entry else []):
            lines.append(f"    ! {problem}")
    return "\n".join(lines)


@dataclass(frozen=True)
class ModelsConfig:
    """`python -m backend models`."""

    json: Path | None = report_option()


def models_command(config: ModelsConfig, sink: EventSink) -> str:
    """Print the table (stdout; log events with --events) and write --json: a list of
    {name, path, ...summary}; returns the --json path or "-"."""
    entries = list_models()
    table = models_table(entries)
    if sink.json_lines:
        for line in table.splitlines():
            sink.log(line)
    else:
        print(table)
    if config.json is None:
        return "-"
    document = [{"name": e.name, "path": str(e.path), **e.summary} for e in entries]
    with atomic_file(Path(config.json)) as tmp:
        tmp.write_text(json.dumps(document, indent=1, allow_nan=False) + "\n")
    return str(config.json)
