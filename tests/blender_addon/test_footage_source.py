"""The footage a user points at, without Blender: which source frames a (trimmed, offset) movie
strip or Movie Clip Editor clip plays and where source frame 0 plays in the scene.

The stand-ins carry the attributes Blender gives (checked with bpy 5.0.1 on a 78-frame movie:
a strip added at frame 10 has frame_final_start 10, frame_final_end 88 (exclusive),
frame_final_duration 78; trimmed by 5 and 3 it has 15, 85 and 70; a Movie Clip shows source
frame `scene frame - frame_start + frame_offset`)."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

from faceadapt.blender_addon.footage_source import (
    FootageSource,
    NoFootage,
    from_movie_clip,
    from_movie_strip,
    require_file,
)

MOVIE_FRAMES = 78


def movie_strip(start: float, trim_start: int = 0, trim_end: int = 0, **changes) -> SimpleNamespace:
    """A movie strip as Blender reports it: content frame i plays at scene frame start + i; the
    visible part is [frame_final_start, frame_final_end)."""
    fields = dict(type="MOVIE", name="actor.mp4", fps=25.0, frame_start=start,
                  frame_final_start=round(start) + trim_start,
                  frame_final_end=round(start) + MOVIE_FRAMES - trim_end)
    fields.update(changes)
    return SimpleNamespace(**fields)


def movie_clip(start: int, offset: int = 0, **changes) -> SimpleNamespace:
    fields = dict(source="MOVIE", name="actor.mp4", fps=30.0, frame_start=start, frame_offset=offset,
                  frame_duration=MOVIE_FRAMES)
    fields.update(changes)
    return SimpleNamespace(**fields)


def scene_frame_of(source: FootageSource, source_frame: int) -> int:
    return source.scene_frame_of_source_zero + source_frame


def test_an_untrimmed_strip_plays_every_frame():
    source = from_movie_strip(movie_strip(10.0), "/clips/actor.mp4")
    assert source == FootageSource(Path("/clips/actor.mp4"), 0, MOVIE_FRAMES - 1, 10, 25.0, "actor.mp4")
    assert source.frames_argument() == "0-77"


def test_a_trimmed_strip_plays_only_its_visible_frames():
    source = from_movie_strip(movie_strip(10.0, trim_start=5, trim_end=3), "/clips/actor.mp4")
    assert (source.first_frame, source.last_frame) == (5, 74)
    assert source.frames_argument() == "5-74"
    # The first and last visible scene frames show the first and last tracked source frames.
    assert scene_frame_of(source, source.first_frame) == 15
    assert scene_frame_of(source, source.last_frame) == 84  # frame_final_end 85 is exclusive


def test_a_strip_starting_before_the_scene_keeps_its_offset():
    source = from_movie_strip(movie_strip(-20.0, trim_start=30), "/clips/actor.mp4")
    assert (source.first_frame, source.last_frame, source.scene_frame_of_source_zero) == (30, 77, -20)
    assert scene_frame_of(source, 30) == 10


@pytest.mark.parametrize("kind", ["SOUND", "IMAGE", "COLOR", None])
def test_a_strip_that_is_not_a_movie_is_refused(kind):
    strip = movie_strip(1.0, type=kind, name="Voice")
    with pytest.raises(NoFootage, match=rf"the active strip 'Voice' is a {kind} strip, not a movie: "
                                        "select a movie strip"):
        from_movie_strip(strip, "/clips/voice.wav")


def test_a_strip_that_plays_no_frames_is_refused():
    strip = movie_strip(1.0, frame_final_start=40, frame_final_end=40)
    with pytest.raises(NoFootage, match=r"the strip 'actor\.mp4' plays no frames"):
        from_movie_strip(strip, "/clips/actor.mp4")


def test_a_clip_plays_every_frame_from_its_start_and_offset():
    source = from_movie_clip(movie_clip(1), "/clips/actor.mp4")
    assert source == FootageSource(Path("/clips/actor.mp4"), 0, MOVIE_FRAMES - 1, 1, 30.0, "actor.mp4")
    # frame_offset 3: scene frame 20 shows source frame 20 - 20 + 3 = 3.
    source = from_movie_clip(movie_clip(20, offset=3), "/clips/actor.mp4")
    assert source.scene_frame_of_source_zero == 17
    assert scene_frame_of(source, 3) == 20
    assert source.frames_argument() == "0-77"


def test_an_image_sequence_clip_is_refused():
    with pytest.raises(NoFootage, match=r"the clip 'shots' is an image sequence; .*backend track FOLDER"):
        from_movie_clip(movie_clip(1, source="SEQUENCE", name="shots"), "/clips/shot_0001.png")


def test_a_clip_without_frames_is_refused():
    with pytest.raises(NoFootage, match=r"the clip 'actor\.mp4' plays no frames"):
        from_movie_clip(movie_clip(1, frame_duration=0), "/clips/actor.mp4")


def test_require_file(tmp_path):
    movie = tmp_path / "actor.mp4"
    movie.write_bytes(b"\x00")
    present = from_movie_strip(movie_strip(1.0), str(movie))
    assert require_file(present) is present
    missing = from_movie_strip(movie_strip(1.0), str(tmp_path / "moved.mp4"))
    with pytest.raises(NoFootage, match=r"the footage of 'actor.mp4' \(.*moved\.mp4\) does not exist"):
        require_file(missing)
    with pytest.raises(NoFootage, match="does not exist"):
        require_file(from_movie_strip(movie_strip(1.0), str(tmp_path)))  # a folder is not footage
