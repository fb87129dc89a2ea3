"""The image encoder inside a model folder: encoder.json (schema, architecture, training
settings, metrics, the digest of the DAM weights it was trained against) + encoder.safetensors
(weights float16, normalisation buffers float32; never a pickle). An encoder is only valid
with the DAM it regresses codes of: a model folder whose DAM weights changed since is
refused."""

from __future__ import annotations

import json
from pathlib import Path

from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from ..dam.model_folder import model_id
from ..formats.atomic import atomic_file
from ..formats.errors import BadInput
from .network import EncoderArchitecture, ImageEncoder

ENCODER_SCHEMA = 1
ENCODER_INFO = "encoder.json"
ENCODER_WEIGHTS = "encoder.safetensors"


def has_encoder(folder: Path) -> bool:
    return (Path(folder) / ENCODER_INFO).is_file()


def save_encoder(folder: Path, encoder: ImageEncoder, info: dict) -> None:
    """Write the weights, then encoder.json (each atomically; the JSON last, so a folder with
    encoder.json always has the weights it describes)."""
    folder = Path(folder)
    # Weights in half precision (half the file, no measurable loss); the buffers (the codes'
    # and the landmark inputs' normalisation) in full: a rounded mean shifts every input.
    buffers = {name for name, _ in encoder.named_buffers()}
    state = {k: (v.half() if v.is_floating_point() and k not in buffers else v).contiguous().cpu()
             for k, v in encoder.state_dict().items()}
    with atomic_file(folder / ENCODER_WEIGHTS) as tmp:
        save_file(state, str(tmp))
    document = {"schema": ENCODER_SCHEMA, "architecture": encoder.config.as_dict(),
                "dam_weights": model_id(folder), **info}
    with atomic_file(folder / ENCODER_INFO) as tmp:
        tmp.write_text(json.dumps(document, indent=1, allow_nan=False) + "\n")


def read_encoder_info(folder: Path) -> dict:
    path = Path(folder) / ENCODER_INFO
    if not path.is_file():
        raise BadInput(f"model folder {folder} has no image encoder ({ENCODER_INFO}); train one "
                       f"with `python -m backend train-encoder {folder}`")
    try:
        document = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise BadInput(f"{path} is not readable JSON ({exc}); train the encoder again") from exc
    schema = document.get("schema") if isinstance(document, dict) else None
    if schema != ENCODER_SCHEMA:
        raise BadInput(f"{path}: encoder schema {schema}, this FaceAdapt reads {ENCODER_SCHEMA}; "
                       "train the encoder again")
    return document


def encoder_architecture(info: dict) -> EncoderArchitecture:
    """The architecture an encoder.json records; a file without `landmark_code` (written before
    the option) holds the perceptron's weights. TypeError/ValueError/KeyError when it is not
    one."""
    return EncoderArchitecture(**{"landmark_code": "mlp", **info["architecture"]})


def load_encoder(folder: Path, device: str = "cpu") -> tuple[ImageEncoder, dict]:
    """(encoder in eval mode on `device`, encoder.json); BadInput naming what is wrong."""
    info = read_encoder_info(folder)
    path = Path(folder) / ENCODER_WEIGHTS
    if info.get("dam_weights") != model_id(folder):
        raise BadInput(f"the image encoder in {folder} was trained for other DAM weights than "
                       f"{folder}/weights.safetensors holds now; train it again with "
                       f"`python -m backend train-encoder {folder}`")
    try:
        encoder = ImageEncoder(encoder_architecture(info))
        state = load_file(path)
        encoder.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in state.items()})
    except (OSError, RuntimeError, SafetensorError, TypeError, KeyError, ValueError) as exc:
        raise BadInput(f"{path} cannot be loaded ({type(exc).__name__}: {exc}); the file is "
                       "truncated, not safetensors or from another encoder: train it again") from exc
    return encoder.to(device).eval(), info
