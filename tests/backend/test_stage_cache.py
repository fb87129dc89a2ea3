"""The stage cache's entries: built privately and published whole, reused, rebuilt when they do
not load, and kept under the size limit by deleting the least recently used."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from backend.formats.errors import BadInput
from backend.stage_cache import cached_stage, prune_stages, stage_cache_limit_bytes, stage_key


class Sink:
    def __init__(self) -> None:
        self.logs: list[str] = []

    def log(self, message: str) -> None:
        self.logs.append(message)


def _entry(stage: str, name: str, size: int, tmp_path: Path, sink: Sink) -> tuple[str, bool]:
    def build(folder: Path) -> None:
        folder.mkdir()
        (folder / "data.bin").write_bytes(b"x" * size)

    def read(folder: Path) -> str:
        return (folder / "data.bin").read_bytes()[:1].decode()

    return cached_stage(stage, stage_key(name=name), build, read, tmp_path / f"fallback-{name}", sink)


@pytest.fixture
def cache(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("FACEADAPT_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache" / "stages"


def test_an_entry_is_built_once_published_whole_and_rebuilt_when_broken(cache, tmp_path):
    sink = Sink()
    assert _entry("s", "a", 10, tmp_path, sink) == ("x", False)
    assert _entry("s", "a", 10, tmp_path, sink) == ("x", True)
    assert [p.name for p in (cache / "s").iterdir()] == [stage_key(name="a")]  # no private folder left
    (cache / "s" / stage_key(name="a") / "data.bin").unlink()
    assert _entry("s", "a", 10, tmp_path, sink) == ("x", False)
    assert any("rebuilding" in m for m in sink.logs)


def test_the_least_recently_used_entries_go_beyond_the_limit(cache, tmp_path, monkeypatch):
    monkeypatch.setenv("FACEADAPT_STAGE_CACHE_GB", str(2500 / 1e9))  # 2.5 entries of 1000 bytes
    sink = Sink()
    for age, name in enumerate(("old", "used", "newer")):
        _entry("s", name, 1000, tmp_path, sink)
        os.utime(cache / "s" / stage_key(name=name), (1000 + age, 1000 + age))
    # All three (3000 bytes) were stored; each store pruned: "old" went when "newer" came.
    assert not (cache / "s" / stage_key(name="old")).exists()
    assert any("removed 1 least recently used entry" in m for m in sink.logs)
    assert _entry("s", "used", 1000, tmp_path, sink) == ("x", True)  # reuse marks it used now
    _entry("t", "another stage", 1000, tmp_path, sink)
    left = {p.name for p in cache.rglob("*") if len(p.name) == 64}
    assert left == {stage_key(name="used"), stage_key(name="another stage")}


def test_the_entry_just_stored_is_kept_even_over_the_limit(cache, tmp_path, monkeypatch):
    monkeypatch.setenv("FACEADAPT_STAGE_CACHE_GB", "0")
    sink = Sink()
    _entry("s", "first", 100, tmp_path, sink)
    _entry("s", "second", 100, tmp_path, sink)
    assert [p.name for p in (cache / "s").iterdir()] == [stage_key(name="second")]
    prune_stages(cache / "nothing", sink)
    assert not any((cache / "s").iterdir())


@pytest.mark.parametrize("value", ["lots", "-1", "inf", "nan"])
def test_a_bad_limit_is_refused_naming_the_variable(monkeypatch, value):
    monkeypatch.setenv("FACEADAPT_STAGE_CACHE_GB", value)
    with pytest.raises(BadInput, match="FACEADAPT_STAGE_CACHE_GB"):
        stage_cache_limit_bytes()


def test_track_refuses_a_bad_limit_before_touching_the_footage(monkeypatch, tmp_path):
    from backend.events import EventSink
    from backend.track import TrackSettings, run_track

    monkeypatch.setenv("FACEADAPT_STAGE_CACHE_GB", "lots")
    with pytest.raises(BadInput, match="FACEADAPT_STAGE_CACHE_GB"):
        run_track(TrackSettings(footage=tmp_path / "missing.mp4", out=tmp_path / "r"),
                  EventSink(json_lines=False))
    assert not (tmp_path / "r").exists()


def test_without_a_key_the_entry_is_built_at_the_fallback_and_never_cached(cache, tmp_path):
    sink = Sink()

    def build(folder: Path) -> None:
        folder.mkdir()
        (folder / "data.bin").write_bytes(b"y")

    value, reused = cached_stage("s", None, build, lambda f: (f / "data.bin").read_bytes(), tmp_path / "fb",
                                 sink)
    assert (value, reused) == (b"y", False) and (tmp_path / "fb" / "data.bin").is_file()
    assert not cache.exists()
