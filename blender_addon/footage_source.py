"""The footage a user points at: the active movie strip (Video Sequencer) or the Movie Clip
Editor's clip, as a file, the source frames it plays and where they play in the scene."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


class NoFootage(Exception):
    """Nothing trackable is selected; the message says what to do."""


@dataclass(frozen=True)
class FootageSource:
    path: Path
    first_frame: int  # 0-based source frame indices, inclusive
    last_frame: int
    scene_frame_of_source_zero: int  # scene frame where source frame 0 plays
    fps: float
    name: str

    def frames_argument(self) -> str:
        return f"{self.first_frame}-{self.last_frame}"


def from_movie_strip(strip: object, absolute_path: str) -> FootageSource:
    """A Video Sequencer strip (bpy.types.Strip-like: type, frame_start, frame_final_start,
    frame_final_end, fps, name). Only the visible (trimmed) part is tracked."""
    kind = getattr(strip, "type", None)
    if kind != "MOVIE":
        raise NoFootage(f"the active strip '{getattr(strip, 'name', '?')}' is a {kind} strip, "
                        "not a movie: select a movie strip to track")
    start = round(strip.frame_start)
    first = int(strip.frame_final_start) - start
    last = int(strip.frame_final_end) - 1 - start
    if last < first:
        raise NoFootage(f"the strip '{strip.name}' plays no frames")
    return FootageSource(Path(absolute_path), first, last, start, float(strip.fps), strip.name)


def from_movie_clip(clip: object, absolute_path: str) -> FootageSource:
    """A Movie Clip Editor clip (bpy.types.MovieClip-like: frame_start, frame_offset,
    frame_duration, fps, name): all its frames, source frame 0 at `frame_start - frame_offset`."""
    if getattr(clip, "source", "MOVIE") != "MOVIE":
        raise NoFootage(f"the clip '{clip.name}' is an image sequence; FaceAdapt tracks movie files "
                        "from the editor (use `python -m backend track FOLDER` for sequences)")
    if int(clip.frame_duration) < 1:
        raise NoFootage(f"the clip '{clip.name}' plays no frames")
    zero = int(clip.frame_start) - int(clip.frame_offset)
    return FootageSource(Path(absolute_path), 0, int(clip.frame_duration) - 1, zero,
                         float(clip.fps), clip.name)


def require_file(source: FootageSource) -> FootageSource:
    if not source.path.is_file():
        raise NoFootage(f"the footage of '{source.name}' ({source.path}) does not exist")
    return source
