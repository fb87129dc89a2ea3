"""The shot file of `batch`: read into typed track settings, and every problem of every shot
named (shot and field) before anything runs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from backend.batch.shot_file import load_shot_file
from backend.config_parser import config_from_mapping
from backend.formats.errors import BadInput
from backend.track import TrackSettings


def write(folder: Path, text: str) -> Path:
    path = folder / "shots.toml"
    path.write_text(text)
    return path


@pytest.fixture
def clip(data_dir: Path, tmp_path: Path) -> Path:
    """A real clip beside the shot file, named relative to it."""
    link = tmp_path / "plates" / "actor.mp4"
    link.parent.mkdir()
    link.symlink_to(data_dir / "videos" / "lp_driving_d3.mp4")
    return link


def test_shots_get_defaults_their_own_fields_and_paths_relative_to_the_file(clip, tmp_path):
    path = write(tmp_path, """
[defaults]
tracker = "landmark-fit"
texture_size = 0
frames = "0-9"

[defaults.adaptation]
passes = 4
texels = 32

[[shot]]
footage = "plates/actor.mp4"

[[shot]]
name = "sh020"
footage = "plates/actor.mp4"
frames = "5-7"
tracker = "adapted"
device = "cpu"
adaptation = { passes = 2 }
""")
    first, second = load_shot_file(path, tmp_path / "out")
    assert (first.name, second.name) == ("actor", "sh020")
    assert first.settings.footage == clip and first.settings.out == tmp_path / "out" / "actor"
    assert (first.settings.frames, first.frame_count, first.settings.tracker) == ("0-9", 10, "landmark-fit")
    assert first.settings.device == "auto" and not first.wants_gpu
    assert (second.settings.frames, second.frame_count, second.settings.tracker) == ("5-7", 3, "adapted")
    # A shot's own adaptation table adds to the defaults' one.
    assert (second.settings.adaptation.passes, second.settings.adaptation.texels) == (2.0, 32)
    assert first.settings.adaptation.passes == 4.0 and second.settings.device == "cpu"
    assert first.settings.texture_size == 0 and first.settings.overwrite


def test_every_problem_of_every_shot_is_named_at_once(clip, tmp_path, data_dir):
    (tmp_path / "out" / "taken").mkdir(parents=True)
    (tmp_path / "out" / "taken" / "notes.txt").write_text("the user's own")
    path = write(tmp_path, f"""
[defaults]
tracker = "landmark-fit"
colour = "red"

[[shot]]
name = "missing"
footage = "plates/nowhere.mp4"

[[shot]]
name = "unknown-tracker"
footage = "plates/actor.mp4"
tracker = "magic"

[[shot]]
name = "past-the-end"
footage = "plates/actor.mp4"
frames = "0-99999"

[[shot]]
name = "typed"
footage = "plates/actor.mp4"
texture_size = "big"
adaptation = {{ passes = -1 }}

[[shot]]
name = "dup"
footage = "plates/actor.mp4"

[[shot]]
name = "DUP"
footage = "{data_dir / 'videos' / 'lp_driving_d0.mp4'}"

[[shot]]
name = "taken"
footage = "plates/actor.mp4"

[[shot]]
name = "../escape"
footage = "plates/actor.mp4"

[[shot]]
footage = "plates/actor.mp4"
out = "elsewhere"
device = "tpu"
""")
    with pytest.raises(BadInput) as refused:
        load_shot_file(path, tmp_path / "out")
    message = refused.value.message
    expected = [
        "[defaults]: unknown field 'colour'",
        "shot 1 (missing): footage", "nowhere.mp4 does not exist",
        "shot 2 (unknown-tracker): field 'tracker' = 'magic': must be one of adapted, landmark-fit",
        "shot 3 (past-the-end): --frames 0-99999: the clip has",
        "shot 4 (typed): field 'texture_size' = 'big': must be an integer",
        "shot 6 (DUP): duplicate output name, shot 5 is also 'dup'",
        "shot 7 (taken):", "taken is in the way (it has no readable result.json); move it or give the shot",
        "shot 8 (../escape): field 'name' = '../escape'",
        "shot 9 (actor): field 'out' is the batch's own",
        "shot 9 (actor): field 'device' = 'tpu'",
        "nothing was run",
    ]
    for part in expected:
        assert part in message, f"{part!r} not in:\n{message}"
    # The nested adaptation problem is reported even though the same shot had another.
    assert "shot 4 (typed).adaptation: adaptation settings: --adapt-passes -1.0: must be positive" in message
    assert (tmp_path / "out" / "taken" / "notes.txt").read_text() == "the user's own"


@pytest.mark.parametrize("text, expected", [
    ("this is = not toml [", "is not valid TOML"),
    ("", "no shots"),
    ("[[shot]]\nname = 'x'\n", "field 'footage' is required"),
    ("shot = 3\n", "'shot' must be an array of tables"),
    ("[defaults]\nfootage = 'a.mp4'\n[[shot]]\nfootage = 'b.mp4'\n",
     "[defaults]: field 'footage' is set per shot"),
    ("[jobs]\n", "unknown table or key 'jobs'"),
])
def test_malformed_files_are_refused_with_what_is_wrong(tmp_path, text, expected):
    with pytest.raises(BadInput) as refused:
        load_shot_file(write(tmp_path, text), tmp_path / "out")
    assert expected in refused.value.message


def test_a_missing_shot_file_is_named(tmp_path):
    with pytest.raises(BadInput, match=r"shot file .*nothing\.toml does not exist"):
        load_shot_file(tmp_path / "nothing.toml", tmp_path / "out")


def test_a_results_directory_of_faceadapt_may_be_replaced(clip, tmp_path):
    results = tmp_path / "out" / "actor"
    results.mkdir(parents=True)
    (results / "result.json").write_text(json.dumps({"schema": 1}))
    path = write(tmp_path, '[[shot]]\nfootage = "plates/actor.mp4"\ntracker = "landmark-fit"\n')
    assert load_shot_file(path, tmp_path / "out")[0].settings.out == results


def test_mapping_to_config_types_every_field_and_names_unknown_ones():
    settings, problems = config_from_mapping(
        TrackSettings, {"footage": "a.mp4", "fps": 24, "texture_size": 0, "adaptation": {"seed": 3}},
        "shot 1", out=Path("o"))
    assert not problems
    assert settings.footage == Path("a.mp4") and settings.fps == 24.0 and isinstance(settings.fps, float)
    assert settings.adaptation.seed == 3 and settings.out == Path("o")
    _, problems = config_from_mapping(TrackSettings, {"fps": True, "overwrite": 1, "detector": "eyes",
                                                      "adaptation": 5}, "shot 2", out=Path("o"))
    assert problems == [
        "shot 2: field 'footage' is required (movie file or folder of images)",
        "shot 2: field 'detector' = 'eyes': must be one of mediapipe, fan",
        "shot 2: field 'overwrite' = 1: must be true or false",
        "shot 2: field 'fps' = True: must be a finite number",
        "shot 2: field 'adaptation' must be a table of AdaptationConfig fields",
    ]
    _, problems = config_from_mapping(TrackSettings, {"footage": "a", "fps": -2.0}, "shot 3", out=Path("o"))
    assert problems == ["shot 3: --fps -2.0: must be a finite number above 0 (frames per second)"]


def test_defaults_problems_are_named_once_not_per_shot(clip, tmp_path):
    path = write(tmp_path, """
[defaults]
device = "gpu"
texture_size = "big"

[defaults.adaptation]
pases = 4

[[shot]]
footage = "plates/actor.mp4"

[[shot]]
name = "two"
footage = "plates/actor.mp4"
""")
    with pytest.raises(BadInput) as refused:
        load_shot_file(path, tmp_path / "out")
    problems = refused.value.message.splitlines()[1:]
    assert [p.strip() for p in problems] == [
        "- [defaults]: field 'device' = 'gpu': must be one of auto, cpu, cuda",
        "- [defaults]: field 'texture_size' = 'big': must be an integer",
        "- [defaults].adaptation: unknown field 'pases' (fields: anchor_weight, appearance_frames, "
        "appearance_weight, fixed_focal, frame_learning_rate, landmark_weight, learning_rate, pairs, passes, "
        "prior_weight, refine_passes, seed, shading_weight, shading_window, smooth_weight, temporal_sigma, "
        "texels, texture_weight)",
    ]


def test_paths_are_absolute_wherever_the_batch_starts_and_a_bom_is_read(clip, tmp_path, monkeypatch):
    (tmp_path / "shots.toml").write_bytes('\ufeff[[shot]]\nfootage = "plates/actor.mp4"\n'.encode())
    (tmp_path / "plates" / "take 01 (final).mp4").symlink_to(clip)
    with (tmp_path / "shots.toml").open("a") as file:
        file.write('[[shot]]\nfootage = "plates/take 01 (final).mp4"\n')
    monkeypatch.chdir(tmp_path)
    first, second = load_shot_file(Path("shots.toml"), Path("out"))
    assert first.settings.footage == clip and first.settings.out == tmp_path / "out" / "actor"
    assert second.name == "take_01_final_"  # from the file's stem, made a folder name
