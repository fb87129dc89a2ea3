"""The one CLI: every command is a typed config built from its options (no argparse
Namespace reaches library code), defaults come from the configs, usage errors are BadInput."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from backend.cli import BENCHMARKS, COMMANDS, main, parse
from backend.dam.model import DamArchitecture
from backend.dam.training import DamTraining
from backend.formats.errors import BadInput
from backend.lab.capture import CaptureConfig
from backend.track import TrackSettings
from backend.trackers.registry import tracker_names

MINIMAL = {"track": ["clip.mp4", "--out", "r"], "batch": ["shots.toml", "--out", "o"],
           "export-head": ["--out", "h.npz"],
           "capture": ["--out", "c"], "train-dam": ["cap", "--out", "m"],
           "evaluate-model": ["m"], "make-benchmark": ["--out", "b"], "evaluate": ["r"],
           "bake-textures": ["r", "--camera", "cam.json"], "train-encoder": ["m"],
           "fit-identity": ["clip.mp4", "--out", "h.npz"], "evaluate-identity": ["h.npz", "--truth", "c"],
           "identity-benchmark": ["--out", "b"], "personalize": ["clip.mp4", "--out", "actor"],
           "personal-benchmark": ["clip.mp4", "--model", "actor", "--out", "b"],
           "personal-truth-benchmark": ["--out", "b"], "loss-minima": ["clips"]}


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: c.name)
def test_every_command_parses_into_its_typed_config(command):
    parsed, config, common = parse([command.name, *MINIMAL.get(command.name, []), "--device", "cpu"])
    assert parsed is command and isinstance(config, command.config)
    assert common.device == "cpu" and not common.events
    if "device" in {f.name for f in dataclasses.fields(config)}:
        assert config.device == "cpu"


@pytest.mark.parametrize("benchmark", BENCHMARKS, ids=lambda c: c.name)
def test_every_benchmark_has_its_own_options(benchmark):
    parsed, config, _ = parse(["bench", benchmark.name, "--json", "r.json", "--device", "cpu"])
    assert parsed is benchmark and isinstance(config, benchmark.config)
    assert config.json == Path("r.json")


def test_defaults_are_the_configs_own():
    _, track, _ = parse(["track", "clip.mp4", "--out", "r", "--device", "cpu"])
    assert track == TrackSettings(footage=Path("clip.mp4"), out=Path("r"), device="cpu")
    _, train, _ = parse(["train-dam", "cap", "--out", "m", "--steps", "7", "--latent", "8",
                         "--device", "cpu"])
    assert train.architecture == DamArchitecture(latent=8)
    assert train.training == DamTraining(steps=7)
    _, capture, _ = parse(["capture", "--out", "c", "--held-out", "0.25", "--device", "cpu"])
    assert capture.capture == CaptureConfig(held_out_fraction=0.25)


def test_tracker_choices_are_the_registry():
    _, track, _ = parse(["track", "c.mp4", "--out", "r", "--tracker", tracker_names()[-1],
                         "--device", "cpu"])
    assert track.tracker == tracker_names()[-1]
    with pytest.raises(BadInput, match="invalid choice"):
        parse(["track", "c.mp4", "--out", "r", "--tracker", "no-such-tracker"])


@pytest.mark.parametrize(("argv", "words"), [
    (["track", "clip.mp4"], "--out"),
    (["make-benchmark", "--out", "b", "--quick", "--specs", "s.json"], "pass one"),
    (["evaluate", "r", "--frame-step", "0"], "--frame-step 0"),
    (["evaluate", "r", "--truth", "c", "--common-with", "r2"], "--common-with is for real footage"),
    (["bench", "suite"], "invalid choice"),
    (["demo", "--frames", "0"], "--frames 0"),
])
def test_usage_errors_are_bad_input(argv, words):
    with pytest.raises(BadInput, match=words):
        parse([*argv, "--device", "cpu"])


def test_usage_error_with_events_is_an_error_event(capsys):
    assert main(["track", "clip.mp4", "--events"]) == 2
    out = capsys.readouterr().out
    assert '"event":"error"' in out and '"kind":"bad_input"' in out


def test_a_cancel_that_a_library_wrapped_is_still_a_cancel():
    """The report: SIGTERM while Warp loaded its native library exited 4 (internal), Warp having
    turned the Cancelled into 'RuntimeError: Failed to read the warp native library version.'"""
    from backend.cli import _cancel_behind
    from backend.formats.errors import Cancelled

    try:
        try:
            raise Cancelled("cancelled by signal SIGTERM")
        except Cancelled as cancel:
            raise RuntimeError("Failed to read the warp native library version.") from cancel
    except RuntimeError as exc:
        wrapped = exc
    assert _cancel_behind(wrapped).message == "cancelled by signal SIGTERM"
    assert _cancel_behind(RuntimeError("a real bug")) is None


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: c.name)
def test_every_command_prints_its_help(command, capsys):
    # argparse %-formats help texts: a bare "%" in an option's help breaks --help.
    with pytest.raises(SystemExit) as exit_info:
        parse([command.name, "--help"])
    assert exit_info.value.code == 0 and command.name in capsys.readouterr().out
