"""Lab capture and the Deep Appearance Model on tiny configurations."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file

from backend.dam.checkpoint import load_checkpoint, save_checkpoint
from backend.dam.evaluation import render_with_texture
from backend.dam.model import DamArchitecture
from backend.dam.model_folder import decode, load_model, save_model
from backend.dam.training import DamTraining, train_dam
from backend.dam.training_data import BatchMaker
from backend.events import EventSink
from backend.formats.errors import BadInput
from backend.lab.capture import CaptureConfig, LabCapture, make_capture
from conftest import run_backend

TINY = CaptureConfig(expressions=12, cameras=3, image_size=64, texture_size=32, seed=3,
                     held_out_fraction=0.25)


@pytest.fixture(scope="module")
def tiny_capture(default_head, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_capture(default_head, TINY, tmp_path_factory.mktemp("cap") / "c", False,
                        EventSink(False))


@pytest.fixture(scope="module")
def tiny_model(tiny_capture: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    architecture = DamArchitecture(latent=16, texture_size=32, hidden=64, base_channels=8)
    config = DamTraining(batch_size=8, steps=240, checkpoint_every=120, learning_rate=2e-3)
    return train_dam(tiny_capture, tmp_path_factory.mktemp("model") / "m", architecture, config,
                     False, EventSink(False))


def test_capture_is_deterministic(default_head, tiny_capture: Path, tmp_path: Path):
    again = make_capture(default_head, TINY, tmp_path / "again", False, EventSink(False))
    a, b = LabCapture.open(tiny_capture), LabCapture.open(again)
    np.testing.assert_array_equal(a.weights, b.weights)
    np.testing.assert_array_equal(a.poses, b.poses)
    np.testing.assert_array_equal(a.average_texture, b.average_texture)
    assert a.held_out.any() and not a.held_out.all()


def test_unwrapped_textures_match_the_renders(default_head, tmp_path: Path):
    """Re-rendering a view with its own unwrapped texture reproduces the lab image."""
    config = replace(TINY, expressions=2, cameras=2, image_size=128, texture_size=256)
    capture = LabCapture.open(make_capture(default_head, config, tmp_path / "c", False,
                                           EventSink(False)))
    maker = BatchMaker(capture)
    batch = maker.make(np.array([0, 1]), np.array([0, 1]))
    image, face = render_with_texture(maker, batch.vertices, batch.texture, batch.poses)
    # Away from the silhouette, where texels mix with the background.
    inner = -torch.nn.functional.max_pool2d(-face[:, None].float(), 5, 1, 2)[:, 0] > 0.5
    error = ((image - batch.images) ** 2).mean(1)[inner]
    assert inner.sum() > 1000
    psnr = -10 * np.log10(error.mean().item())
    assert psnr > 30, psnr


def test_texels_no_view_saw_are_filled_from_the_albedo_in_the_layouts_own_orientation(
        default_head, tmp_path: Path):
    # Red and blue checks: their chromaticity survives the lab's shading, so it shows whether
    # the albedo is read in the layout's orientation (a flipped or shifted read would not match).
    rows, cols = np.indices((64, 64)) // 8
    checks = np.where(((rows + cols) % 2 == 0)[..., None], [200, 60, 40], [40, 60, 200]).astype(np.uint8)
    head = replace(default_head, albedo=checks)
    config = replace(TINY, expressions=2, cameras=2)
    capture = LabCapture.open(make_capture(head, config, tmp_path / "c", False, EventSink(False)))
    lab = BatchMaker(capture).lab
    texel = lab.atlas.texel_index.numpy()
    average = np.asarray(capture.average_texture[0]).reshape(-1, 3)[texel].astype(np.float32) / 255
    seen = np.asarray(capture.average_coverage[0]).reshape(-1)[texel] > 0
    assert 20 < (~seen).sum() and 20 < seen.sum()  # a frontal dome: the back is unseen
    paint = lab.albedo_texels.T.numpy()

    def redness(colour: np.ndarray) -> np.ndarray:
        return colour[:, 0] / np.maximum(colour.sum(1), 1e-6)

    for texels in (seen, ~seen):
        agreement = np.corrcoef(redness(average[texels]), redness(paint[texels]))[0, 1]
        assert agreement > 0.8, (texels.sum(), agreement)
    # Lit as the seen texels are, not black.
    assert average[~seen].mean() > 0.5 * average[seen].mean()


def test_a_capture_made_before_the_fill_leaves_unseen_texels_unsupervised(tiny_capture: Path,
                                                                        tmp_path: Path):
    import shutil

    old = tmp_path / "old"
    shutil.copytree(tiny_capture, old)
    info = json.loads((old / "capture.json").read_text())
    (old / "capture.json").write_text(json.dumps({**info, "format": 1}))
    batch = BatchMaker(LabCapture.open(old)).make(np.arange(2), np.zeros(2, int))
    assert not batch.unseen.any()
    assert BatchMaker(LabCapture.open(tiny_capture)).make(np.arange(2), np.zeros(2, int)).unseen.any()


def test_the_model_decodes_texels_no_view_saw_as_their_fill(tiny_model: Path, tiny_capture: Path):
    capture = LabCapture.open(tiny_capture)
    model, _ = load_model(tiny_model)
    batch = BatchMaker(capture).make(np.arange(4), np.zeros(4, int))
    with torch.no_grad():
        code, _ = model.encode(batch.vertices, batch.average_texture)
        _, texture = decode(model, code, batch.view_dir)
    unseen = batch.unseen[:, None].expand_as(texture)
    decoded, fill = texture[unseen], batch.average_texture[unseen]
    assert fill.mean() > 0.2
    assert (decoded - fill).abs().mean() < 0.25 * fill.mean(), ((decoded - fill).abs().mean(), fill.mean())


def test_a_tiny_dam_overfits_a_tiny_capture(tiny_model: Path):
    info = json.loads((tiny_model / "model.json").read_text())
    first, final = info["training"]["first_losses"], info["training"]["final_losses"]
    assert final["vertex"] < 0.2 * first["vertex"], (first, final)
    assert final["texture"] < 0.8 * first["texture"], (first, final)
    assert info["training"]["samples_per_s"] > 0


def test_save_load_round_trip_and_decode(tiny_model: Path, tmp_path: Path):
    model, info = load_model(tiny_model)
    z = torch.randn(3, model.config.latent)
    view = torch.nn.functional.normalize(torch.randn(3, 3), dim=1)
    vertices, texture = decode(model, z, view)
    assert vertices.shape == (3, model.num_vertices, 3) and texture.shape == (3, 3, 32, 32)
    assert texture.min() >= 0 and texture.max() <= 1
    save_model(tmp_path / "copy", model, {k: v for k, v in info.items()
                                           if k not in ("schema", "architecture", "num_vertices")})
    again, _ = load_model(tmp_path / "copy")
    torch.testing.assert_close(decode(again, z, view)[0], vertices, atol=1e-3, rtol=1e-3)


def test_resume_continues_from_the_checkpoint(tiny_capture: Path, tmp_path: Path):
    architecture = DamArchitecture(latent=8, texture_size=32, hidden=32, base_channels=8)
    config = DamTraining(batch_size=4, steps=6, checkpoint_every=3)
    out = train_dam(tiny_capture, tmp_path / "m", architecture, replace(config, steps=3), False,
                    EventSink(False))
    train_dam(tiny_capture, out, architecture, config, True, EventSink(False))
    # Bit-for-bit the run that was never interrupted: weights, Adam's moments, RNG states.
    straight = train_dam(tiny_capture, tmp_path / "straight", architecture, config, False,
                         EventSink(False))
    resumed, uninterrupted = (load_file(m / "checkpoint.safetensors") for m in (out, straight))
    assert resumed.keys() == uninterrupted.keys() and any(k.startswith("optimizer.") for k in resumed)
    for key in resumed:
        assert torch.equal(resumed[key], uninterrupted[key]), key
    with safe_open(str(out / "checkpoint.safetensors"), "pt") as a, \
            safe_open(str(straight / "checkpoint.safetensors"), "pt") as b:
        first, second = (json.loads(f.metadata()["checkpoint"]) for f in (a, b))
    assert {k: v for k, v in first.items() if k != "elapsed"} == \
        {k: v for k, v in second.items() if k != "elapsed"}
    document = json.loads((out / "model.json").read_text())
    assert document["training"]["steps"] == 6
    assert document["architecture"] == architecture.as_dict() and document["trainer"] == config.as_dict()
    with pytest.raises(BadInput, match="not empty"):
        train_dam(tiny_capture, out, architecture, config, False, EventSink(False))


def test_a_warm_start_begins_from_the_other_models_weights(tiny_model: Path, tiny_capture: Path,
                                                            default_head, tmp_path: Path):
    """--init: the network's weights are the other model's, the normalisation this capture's
    (so a head reshaped to an actor decodes as that head from the first step)."""
    architecture = DamArchitecture(latent=16, texture_size=32, hidden=64, base_channels=8)
    other = make_capture(replace(default_head, vertices=default_head.vertices * 1.1), TINY,
                         tmp_path / "wider", False, EventSink(False))
    frozen = DamTraining(batch_size=4, steps=1, learning_rate=0.0)
    out = train_dam(other, tmp_path / "warm", architecture, frozen, False, EventSink(False),
                    initial=tiny_model)
    warm, info = load_model(out)
    start, _ = load_model(tiny_model)
    buffers = {"vertex_mean", "vertex_scale", "texture_mean", "texture_scale"}
    for name, tensor in start.state_dict().items():
        if name not in buffers:
            assert torch.allclose(warm.state_dict()[name], tensor, atol=1e-3), name
    assert not torch.allclose(warm.vertex_mean, start.vertex_mean)
    assert info["initial"] == str(tiny_model.resolve()) and "--init" in info["reproduce"]
    # A head of another topology (here one vertex more, as a digital double has its own): all
    # but the layers sized by the vertex count come from the other model.
    v = default_head.num_vertices
    extra = replace(default_head, vertices=np.concatenate([default_head.vertices, default_head.vertices[:1]]),
                    blendshapes=np.concatenate([default_head.blendshapes, default_head.blendshapes[:, :1]], 1),
                    face_region=np.append(default_head.face_region, False))
    double = make_capture(extra, TINY, tmp_path / "double", False, EventSink(False))
    warm, _ = load_model(train_dam(double, tmp_path / "double-warm", architecture, frozen, False,
                                   EventSink(False), initial=tiny_model))
    assert warm.num_vertices == v + 1
    kept = [name for name, tensor in start.state_dict().items()
            if name not in buffers and warm.state_dict()[name].shape == tensor.shape]
    assert len(kept) > len(start.state_dict()) - len(buffers) - 4  # the geometry's first and last layers
    for name in kept:
        assert torch.allclose(warm.state_dict()[name], start.state_dict()[name], atol=1e-3), name
    with pytest.raises(BadInput, match="not the architecture"):
        train_dam(other, tmp_path / "other-shape", replace(architecture, latent=8), frozen, False,
                  EventSink(False), initial=tiny_model)


def test_a_budget_stops_the_training_with_a_checkpoint(tiny_capture: Path, tmp_path: Path):
    architecture = DamArchitecture(latent=8, texture_size=32, hidden=32, base_channels=8)
    out = train_dam(tiny_capture, tmp_path / "m", architecture,
                    DamTraining(batch_size=4, steps=10_000, budget=0.5), False, EventSink(False))
    run = json.loads((out / "model.json").read_text())["training"]
    assert run["stopped_by_budget"] and 0 < run["steps"] < 10_000
    assert (out / "checkpoint.safetensors").is_file() and 1 <= len(run["loss_curve"]) <= 10
    with pytest.raises(BadInput, match="positive"):
        train_dam(tiny_capture, tmp_path / "n", architecture, DamTraining(budget=0), False,
                  EventSink(False))


def test_a_step_whose_loss_is_not_finite_is_skipped_and_reported(tiny_capture: Path, tmp_path: Path,
                                                                  monkeypatch):
    from backend.dam import training

    real = training.losses
    calls = []

    def overflowing_once(model, batch, config):
        terms = real(model, batch, config)
        calls.append(1)
        if len(calls) == 2:
            terms = {**terms, "kl": terms["kl"] * float("inf"), "total": terms["total"] * float("nan")}
        return terms

    monkeypatch.setattr(training, "losses", overflowing_once)
    architecture = DamArchitecture(latent=8, texture_size=32, hidden=32, base_channels=8)
    out = train_dam(tiny_capture, tmp_path / "m", architecture, DamTraining(batch_size=4, steps=5),
                    False, EventSink(False))
    model, info = load_model(out)
    assert all(torch.isfinite(t).all() for t in model.state_dict().values())
    run = info["training"]
    assert run["steps"] == 5 and run["nonfinite_steps_skipped"] == 1
    assert all(np.isfinite(v) for v in [*run["final_losses"].values(), *run["loss_curve"]])


def test_bad_models_and_checkpoints(tiny_model: Path, tiny_capture: Path, tmp_path: Path):
    truncated = tmp_path / "truncated"
    truncated.mkdir()
    (truncated / "model.json").write_text((tiny_model / "model.json").read_text())
    (truncated / "weights.safetensors").write_bytes(
        (tiny_model / "weights.safetensors").read_bytes()[:1000])
    with pytest.raises(BadInput, match="cannot be loaded"):
        load_model(truncated)
    other = tmp_path / "other"
    other.mkdir()
    document = json.loads((tiny_model / "model.json").read_text())
    (other / "model.json").write_text(json.dumps({**document, "schema": 99}))
    with pytest.raises(BadInput, match="schema 99"):
        load_model(other)
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "checkpoint.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(BadInput, match="checkpoint"):
        train_dam(tiny_capture, broken, DamArchitecture(texture_size=32), DamTraining(steps=1), True,
                  EventSink(False))


def test_heads_a_capture_cannot_use(default_head, tmp_path: Path):
    with pytest.raises(BadInput, match="albedo"):
        make_capture(replace(default_head, albedo=None), TINY, tmp_path / "a", False, EventSink(False))
    with pytest.raises(BadInput, match="blendshapes"):
        make_capture(replace(default_head, blendshapes=default_head.blendshapes[:0],
                             blendshape_names=[]), TINY, tmp_path / "b", False, EventSink(False))
    with pytest.raises(BadInput, match="blendshapes"):
        replace(default_head, blendshapes=default_head.blendshapes[:, :7]).validate("wrong count")
    with pytest.raises(BadInput, match="'uv'"):
        replace(default_head, uv=np.zeros((0, 2), np.float32)).validate("no UVs")
    with pytest.raises(BadInput, match="not a lab capture"):
        train_dam(Path(tmp_path / "missing"), tmp_path / "m", DamArchitecture(), DamTraining(), False,
                  EventSink(False))


def test_the_shipped_default_model_decodes():
    from backend.data_location import REPO_ROOT
    from backend.heads.default_head import default_head

    folder = REPO_ROOT / "backend" / "models" / "default"
    assert (folder / "weights.safetensors").stat().st_size < 30 * 2**20
    assert not (folder / "weights.pt").exists()
    model, info = load_model(folder)
    assert info["topology_hash"] == default_head().topology_hash
    views = torch.tensor([[0.0, -1.0, 0.0], [0.6, -0.8, 0.0]])
    vertices, texture = decode(model, torch.zeros(2, model.config.latent), views)
    assert vertices.shape == (2, model.num_vertices, 3) and texture.shape == (2, 3, 256, 256)
    # z = 0 is the mean face: close to the head's neutral (mm), and the view changes the texture.
    neutral = torch.as_tensor(default_head().vertices)
    assert (vertices[0] - neutral).norm(dim=-1).mean() < 0.005
    assert (texture[0] - texture[1]).abs().mean() > 1e-3


def test_the_cli_captures_trains_and_evaluates_a_tiny_model(tmp_path: Path):
    """The three commands a user runs to make a model, on a configuration CI can afford."""
    capture, model, report = tmp_path / "capture", tmp_path / "model", tmp_path / "report.json"
    done = run_backend("capture", "--out", str(capture), "--expressions", "8", "--cameras", "2",
                       "--image-size", "64", "--texture-size", "32", "--seed", "5", "--held-out", "0.5")
    assert done.returncode == 0, done.stderr
    done = run_backend("train-dam", str(capture), "--out", str(model), "--steps", "20",
                       "--batch-size", "4", "--latent", "8", "--texture-size", "32",
                       "--checkpoint-every", "10", "--events")
    assert done.returncode == 0, done.stderr
    events = [json.loads(line) for line in done.stdout.splitlines()]
    assert [e["stage"] for e in events if e["event"] == "progress"][-1] == "train"
    assert events[-1] == {"event": "result", "path": str(model)}
    info = json.loads((model / "model.json").read_text())
    assert info["training"]["steps"] == 20 and "reproduce" in info
    assert info["head"] == "head.npz" and (model / "head.npz").is_file()  # train-encoder needs it
    done = run_backend("evaluate-model", str(model), "--views", "1", "--json", str(report))
    assert done.returncode == 0, done.stderr
    figures = json.loads(report.read_text())
    assert figures["held_out_expressions"] >= 1
    assert np.isfinite(figures["rendered_psnr_db"]) and figures["vertex_error_mm"]["mean"] > 0


def test_models_written_before_the_architecture_split_still_load(tiny_model: Path, tmp_path: Path):
    document = json.loads((tiny_model / "model.json").read_text())
    legacy = {k: v for k, v in document.items() if k not in ("architecture", "trainer")}
    legacy["config"] = {**document["architecture"], **document["trainer"]}
    old = tmp_path / "old"
    old.mkdir()
    (old / "model.json").write_text(json.dumps(legacy))
    (old / "weights.safetensors").write_bytes((tiny_model / "weights.safetensors").read_bytes())
    model, _ = load_model(old)
    assert model.config == DamArchitecture(**document["architecture"])
    (old / "model.json").write_text(json.dumps({k: v for k, v in legacy.items() if k != "config"}))
    with pytest.raises(BadInput, match="records no architecture"):
        load_model(old)


class _WritesAMarker:
    """Unpickling this runs `open(marker, 'w')`: proof that a loader executed file content."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


def _pickle_payload(path: Path, marker: Path) -> Path:
    """A torch.save'd dict whose loading with torch.load(weights_only=False) runs the payload."""
    torch.save({"vertex_mean": torch.zeros(3), "payload": _WritesAMarker(marker)}, path)
    return path


def test_a_crafted_model_folder_never_runs_code(tmp_path: Path):
    from backend.data_location import REPO_ROOT

    marker = tmp_path / "executed"
    old = tmp_path / "old"
    old.mkdir()
    (old / "model.json").write_text((REPO_ROOT / "backend/models/default/model.json").read_text())
    _pickle_payload(old / "weights.pt", marker)
    # A folder with only the pickled weights.pt of older models: refused unread, with the way out.
    with pytest.raises(BadInput, match=r"(?s)old/weights\.pt is a pickled .* convert it to "
                                       r"weights\.safetensors"):
        load_model(old)
    assert not marker.exists()
    # Pickle bytes under the new name: not safetensors, refused by name.
    (old / "weights.pt").rename(old / "weights.safetensors")
    with pytest.raises(BadInput, match=r"old/weights\.safetensors cannot be loaded"):
        load_model(old)
    assert not marker.exists()
    # The payload is live: a loader that unpickles would have run it.
    torch.load((old / "weights.safetensors").rename(tmp_path / "live.pt"), weights_only=False)
    assert marker.exists()
    with pytest.raises(BadInput, match=r"old/weights\.safetensors does not exist"):
        load_model(old)


def test_a_crafted_checkpoint_never_runs_code(tmp_path: Path):
    marker = tmp_path / "executed"
    model = torch.nn.Linear(3, 2)
    optimizer = torch.optim.Adam(model.parameters())
    folder = tmp_path / "m"
    folder.mkdir()
    # The pickled checkpoint.pt of older FaceAdapt (what --resume used to torch.load).
    _pickle_payload(folder / "checkpoint.pt", marker)
    with pytest.raises(BadInput, match=r"checkpoint .*m/checkpoint\.pt is pickled"):
        load_checkpoint(folder, model, optimizer)
    assert not marker.exists()
    # Pickle bytes under the new name.
    (folder / "checkpoint.pt").rename(folder / "checkpoint.safetensors")
    with pytest.raises(BadInput, match=r"checkpoint .*m/checkpoint\.safetensors cannot be loaded"):
        load_checkpoint(folder, model, optimizer)
    assert not marker.exists()
    # A real safetensors file whose JSON is not a checkpoint's: named too.
    save_checkpoint(folder / "checkpoint.safetensors", model, optimizer, 1, 0.5,
                    np.random.default_rng(0))
    other = torch.nn.Linear(4, 2)
    with pytest.raises(BadInput, match=r"m/checkpoint\.safetensors cannot be loaded"):
        load_checkpoint(folder, other, torch.optim.Adam(other.parameters()))
    resumed = load_checkpoint(folder, model, optimizer)
    assert resumed is not None and resumed.step == 1 and resumed.elapsed == 0.5
    assert load_checkpoint(tmp_path, model, optimizer) is None  # no checkpoint: a fresh start
    # The payload is live: a loader that unpickles would have run it.
    torch.load(_pickle_payload(tmp_path / "live.pt", marker), weights_only=False)
    assert marker.exists()
