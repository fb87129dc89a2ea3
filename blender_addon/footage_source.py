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


def strip_timing(strip: object) -> tuple[float, int, int]:
    """(scene frame of the strip's source frame 0, first scene frame it plays, the scene frame
    after its last) of a Video Sequencer strip. Blender 5.3 names these content_start,
    left_handle and right_handle and deprecates the 5.0 names (frame_start, frame_final_start,
    frame_final_end; removed in 6.0); 5.0 has only the old ones."""
    if hasattr(strip, "left_handle"):
        return strip.content_start, strip.left_handle, strip.right_handle
    return strip.frame_start, strip.frame_final_start, strip.frame_final_end


def from_movie_strip(strip: object, absolute_path: str) -> FootageSource:
    """A Video Sequencer strip (bpy.types.Strip-like: type, timing as read by strip_timing,
    fps, name). Only the visible (trimmed) part is tracked."""
    kind = getattr(strip, "type", None)
    if kind != "MOVIE":
        raise NoFootage(f"the active strip '{getattr(strip, 'name', '?')}' is a {kind} strip, "
                        "not a movie: select a movie strip to track")
    content_start, left_handle, right_handle = strip_timing(strip)
    start = round(content_start)
    first = int(left_handle) - start
    last = int(right_handle) - 1 - start
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
