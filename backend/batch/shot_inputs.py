"""What a batch checks of a shot's `track` settings before any shot runs: what can be checked
without torch and without decoding more than one frame. Apart from track.py, whose code (and
so the evaluation suite's cache keys of every tracker) it must not widen: it reads model folders."""

from __future__ import annotations

from ..footage import Footage, parse_frame_range
from ..formats.errors import BadInput
from ..heads.default_head import resolve_head
from ..track import TrackSettings, check_head_for_tracking
from ..trackers.registry import tracker_entry


def check_track_inputs(settings: TrackSettings) -> int:
    """The footage opens, the frame range is in it, the tracker's model folder or the head exists
    and they agree, its data files are there. Returns the number of frames to track; BadInput
    naming what is wrong."""
    entry = tracker_entry(settings.tracker)
    entry.resolve_data_files()
    info = Footage(settings.footage, fps=settings.fps).info
    first, last = parse_frame_range(settings.frames, info.frame_count)
    if entry.needs_model:
        from ..dam.model_folder import read_model_info, resolve_model  # torch: only when a model is used

        model_info = read_model_info(resolve_model(settings.model))
        if settings.head != "default" and (resolve_head(settings.head).topology_hash
                                           != model_info.get("topology_hash")):
            raise BadInput(f"--head {settings.head}: the {entry.name} tracker tracks its face model's own "
                           "head, and this head is another; choose the model with --model")
    elif settings.head != "default":  # the shipped head is known to be trackable
        check_head_for_tracking(resolve_head(settings.head))
    return last - first + 1
