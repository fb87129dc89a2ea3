"""The model folder (DESIGN.md "Where things live"): the shipped default carries its head,
models resolve by name or path, and `python -m backend models` lists what each folder holds."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from backend.cli import main
from backend.dam.model_folder import (
    DEFAULT_MODEL,
    ENCODER_JSON,
    ENCODER_WEIGHTS,
    HEAD,
    MODEL_JSON,
    MODELS_VARIABLE,
    PICKLED_WEIGHTS,
    WEIGHTS,
    list_models,
    load_model_head,
    model_record,
    resolve_model,
    save_model_head,
    user_models_dir,
)
from backend.formats.errors import BadInput
from backend.formats.head_file import HeadAsset, save_head
from conftest import square_head_fields


@pytest.fixture
def models_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "models"
    root.mkdir()
    monkeypatch.setenv(MODELS_VARIABLE, str(root))
    return root


def square_model(folder: Path, head_file: bool = True, weights: str | None = WEIGHTS) -> Path:
    """A model folder for the tiny square head: model.json, head.npz and a stand-in weights
    file (listing never loads the network)."""
    head = HeadAsset(**square_head_fields())
    folder.mkdir(parents=True)
    info = {"schema": 1, "architecture": {"latent": 8, "texture_size": 16}, "num_vertices": 4,
            "topology_hash": head.topology_hash, "head": HEAD,
            "metrics": {"vertex_error_mm": {"mean": 0.5}, "rendered_psnr_db": 31.25}}
    (folder / MODEL_JSON).write_text(json.dumps(info))
    if head_file:
        save_head(head, folder / HEAD)
    if weights:
        (folder / weights).write_bytes(b"not read by the listing")
    return folder


def test_the_default_model_carries_the_head_it_was_trained_on():
    info = json.loads((DEFAULT_MODEL / MODEL_JSON).read_text())
    assert info["head"] == HEAD
    head = load_model_head(DEFAULT_MODEL)
    assert head.topology_hash == info["topology_hash"]
    assert head.num_vertices == info["num_vertices"] == 4792
    assert head.albedo is not None and len(head.blendshape_names) == len(info["blendshape_names"])


def test_resolve_default_names_and_paths(models_dir: Path, tmp_path: Path,
                                         monkeypatch: pytest.MonkeyPatch):
    assert resolve_model("default") == DEFAULT_MODEL
    assert user_models_dir() == models_dir
    mine = square_model(models_dir / "actor")
    assert resolve_model("actor") == mine
    elsewhere = square_model(tmp_path / "elsewhere" / "m")
    assert resolve_model(str(elsewhere)) == elsewhere
    monkeypatch.chdir(tmp_path / "elsewhere")
    assert resolve_model("m") == Path("m")  # a bare name not in the models folder: the cwd's
    assert resolve_model("./m") == Path("m")
    with pytest.raises(BadInput, match="no such model; models are default, actor"):
        resolve_model("nobody")
    (tmp_path / "empty").mkdir()
    with pytest.raises(BadInput, match="not a FaceAdapt model folder"):
        resolve_model(str(tmp_path / "empty"))
    with pytest.raises(BadInput, match="not a folder"):
        resolve_model(str(tmp_path / "missing"))


def test_user_models_dir_defaults_to_the_platform_data_folder(monkeypatch: pytest.MonkeyPatch,
                                                             tmp_path: Path):
    monkeypatch.delenv(MODELS_VARIABLE, raising=False)
    monkeypatch.setattr("sys.platform", "linux")
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))
    assert user_models_dir() == tmp_path / "faceadapt" / "models"
    monkeypatch.delenv("XDG_DATA_HOME")
    assert user_models_dir() == Path.home() / ".local" / "share" / "faceadapt" / "models"


def test_a_head_of_another_topology_is_refused(models_dir: Path):
    folder = square_model(models_dir / "actor")
    assert load_model_head(folder).num_vertices == 4
    other = HeadAsset(**square_head_fields())
    other.uv = other.uv[::-1].copy()  # same mesh, another UV layout: another topology
    save_head(other, folder / HEAD)
    with pytest.raises(BadInput, match="is not the head of the model"):
        load_model_head(folder)
    with pytest.raises(BadInput, match="is not the head of the model"):
        save_model_head(folder, other)
    (folder / HEAD).unlink()
    with pytest.raises(BadInput, match="has no head file"):
        load_model_head(folder)
    info = json.loads((folder / MODEL_JSON).read_text())
    (folder / MODEL_JSON).write_text(json.dumps({**info, "head": "../../head.npz"}))
    with pytest.raises(BadInput, match="field 'head' must name a file inside"):
        load_model_head(folder)


def test_save_model_head_names_it_in_model_json(models_dir: Path):
    folder = square_model(models_dir / "actor", head_file=False)
    info = json.loads((folder / MODEL_JSON).read_text())
    del info["head"]
    (folder / MODEL_JSON).write_text(json.dumps(info))
    save_model_head(folder, HeadAsset(**square_head_fields()))
    assert json.loads((folder / MODEL_JSON).read_text())["head"] == HEAD
    assert load_model_head(folder).num_vertices == 4


def test_model_record_identifies_the_weights(models_dir: Path):
    a = square_model(models_dir / "a")
    b = square_model(models_dir / "b")
    assert model_record("a", a)["weights"] == model_record("b", b)["weights"]
    (b / WEIGHTS).write_bytes(b"other weights")
    assert model_record("a", a)["weights"] != model_record("b", b)["weights"]


def test_listing_reports_what_each_folder_holds(models_dir: Path):
    square_model(models_dir / "complete")
    encoded = square_model(models_dir / "encoded")
    (encoded / ENCODER_JSON).write_text(json.dumps({"metrics": {"vertex_error_mm": 0.9}}))
    (encoded / ENCODER_WEIGHTS).write_bytes(b"x")
    square_model(models_dir / "headless", head_file=False)
    square_model(models_dir / "pickled", weights=PICKLED_WEIGHTS)
    square_model(models_dir / "weightless", weights=None)
    (models_dir / "stray").mkdir()
    entries = {e.name: e for e in list_models()}
    assert list(entries) == ["default", "complete", "encoded", "headless", "pickled", "stray",
                             "weightless"]
    default = entries["default"].summary
    assert default["dam"] and default["head"] and default["latent"] == 64 and not default["problems"]
    complete = entries["complete"].summary
    assert (complete["dam"], complete["encoder"], complete["head"], complete["problems"]) == (
        True, False, True, [])
    assert entries["encoded"].summary["encoder"]
    assert entries["encoded"].summary["encoder_metrics"] == {"vertex_error_mm": 0.9}
    assert any("no head file" in p for p in entries["headless"].summary["problems"])
    assert any("pickle" in p for p in entries["pickled"].summary["problems"])
    assert not entries["pickled"].summary["dam"]
    assert any("no DAM weights" in p for p in entries["weightless"].summary["problems"])
    assert any("no model.json" in p for p in entries["stray"].summary["problems"])


def test_models_command_prints_a_table_and_writes_json(models_dir: Path, tmp_path: Path,
                                                       capfd: pytest.CaptureFixture):
    square_model(models_dir / "actor")
    square_model(models_dir / "pickled", weights=PICKLED_WEIGHTS)
    out = tmp_path / "models.json"
    assert main(["models", "--json", str(out)]) == 0
    printed = capfd.readouterr().out
    assert "default" in printed and "actor" in printed and "vertex 0.50 mm; PSNR 31.2 dB" in printed
    assert "! DAM weights are a pickle" in printed
    listed = json.loads(out.read_text())
    assert [m["name"] for m in listed] == ["default", "actor", "pickled"]
    assert listed[1]["vertices"] == 4 and listed[1]["dam"] and not listed[1]["encoder"]
    assert np.isclose(listed[0]["metrics"]["vertex_error_mm"]["mean"], 0.3837, atol=1e-3)


def test_the_default_model_folder_copies_as_a_user_model(models_dir: Path):
    """A copy of the shipped folder under a name resolves and lists like the default."""
    copy = models_dir / "copy"
    shutil.copytree(DEFAULT_MODEL, copy)
    assert resolve_model("copy") == copy
    assert load_model_head(copy).topology_hash == load_model_head(DEFAULT_MODEL).topology_hash
