"""The one tracker registry: what the CLI, the pipeline and the docs read."""

import subprocess
import sys

import pytest

from backend.cli import build_parser
from backend.formats.errors import BadInput
from backend.track import TrackSettings, run_track
from backend.trackers.interface import Tracker
from backend.trackers.registry import (
    DEFAULT_TRACKER,
    TRACKERS,
    tracker_descriptions,
    tracker_entry,
    tracker_names,
)
from conftest import REPO_ROOT, run_backend


def _track_option():
    track = build_parser()._subparsers._group_actions[0].choices["track"]
    return next(a for a in track._actions if a.dest == "tracker")


def test_cli_tracker_choices_are_the_registry():
    option = _track_option()
    assert tuple(option.choices) == tracker_names() == tuple(TRACKERS)
    assert option.default == DEFAULT_TRACKER == tracker_names()[0]
    for name, description in tracker_descriptions().items():
        assert name in option.help and description in option.help


def test_an_unknown_tracker_is_refused_listing_the_choices(tmp_path):
    with pytest.raises(BadInput) as refused:
        tracker_entry("flame-fit")
    assert "flame-fit" in str(refused.value)
    assert all(name in str(refused.value) for name in TRACKERS)
    out = tmp_path / "r"
    with pytest.raises(BadInput, match="choose one of"):
        run_track(TrackSettings(footage=tmp_path / "none.mp4", out=out, tracker="flame-fit"), sink=None)
    assert not out.exists()


def test_the_cli_refuses_an_unknown_tracker_listing_the_choices(tmp_path):
    done = run_backend("track", str(tmp_path), "--out", str(tmp_path / "r"), "--tracker", "flame-fit")
    assert done.returncode != 0
    assert "flame-fit" in done.stderr and all(name in done.stderr for name in TRACKERS)


@pytest.mark.parametrize("name", list(TRACKERS))
def test_every_entry_names_a_tracker_class(name):
    entry = TRACKERS[name]
    cls = entry.tracker_class()
    assert issubclass(cls, Tracker) and not getattr(cls, "__abstractmethods__", None)
    tracker = entry.create()
    assert (tracker.config is None) == (cls.config_type is None)
    assert (REPO_ROOT / "backend" / entry.module_file).is_file()
    assert entry.description and "\n" not in entry.description
    assert entry.needs_detections or entry.needs_frames, f"{name} is given nothing to track"


def test_settings_of_another_type_are_refused():
    with pytest.raises(BadInput, match="FitConfig"):
        TRACKERS["landmark-fit"].create({"rigid_steps": 3})
    with pytest.raises(BadInput, match="no settings"):
        TRACKERS["mediapipe-blendshapes"].create(object())


def test_a_missing_data_file_is_refused_naming_it(tmp_path, monkeypatch):
    monkeypatch.setenv("FACEADAPT_DATA", str(tmp_path))
    with pytest.raises(BadInput, match=r"face_landmarker\.task"):
        TRACKERS["mediapipe-blendshapes"].resolve_data_files()


def test_the_docs_list_every_tracker():
    text = (REPO_ROOT / "docs" / "tracker.md").read_text()
    for name, entry in TRACKERS.items():
        assert f"`{name}`" in text and entry.module_file in text


def test_listing_trackers_imports_no_tracker():
    code = ("import sys; from backend.trackers.registry import tracker_names; tracker_names(); "
            "print(sorted(m for m in ('torch', 'mediapipe') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True)
    assert done.stdout.strip() == "[]", done.stderr
