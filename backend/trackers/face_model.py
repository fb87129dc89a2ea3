"""What every tracker of a face model (a model folder: DAM, its head, its image encoder) does
beyond tracking: it tracks the model's own head, records which model it used (so a latent is
never decoded by other weights), and writes the decoded view-dependent texture of each frame
for the footage camera (textures/footage/). The pipeline calls these hooks for registry
entries with `needs_model`; it imports nothing of the face model itself, so the other
trackers' code (and the suite's cache of their results) does not depend on it.
"""

from __future__ import annotations

import time
from pathlib import Path

from ..dam.model_folder import load_model, load_model_head, model_record, resolve_model
from ..decoded_textures import write_decoded_textures
from ..encoder.encoder_file import read_encoder_info
from ..events import EventSink
from ..formats.head_file import HeadAsset
from ..formats.results_dir import TrackingArrays
from .interface import Tracker


class FaceModelTracker(Tracker):
    """A tracker of a face model; `open_model` comes first."""

    model_folder: Path | None = None
    model_spec: str = "default"

    def open_model(self, spec: str) -> tuple[Path, HeadAsset]:
        """(model folder, its head) for `--model spec`; BadInput for a model that cannot
        track (no such model, no encoder, a head of another topology)."""
        folder = resolve_model(spec)
        read_encoder_info(folder)
        head = load_model_head(folder)
        self.model_folder, self.model_spec = folder, spec
        return folder, head

    def result_fields(self) -> dict:
        """Top-level fields for result.json: the model (`dam_model`: spec, path, weights digest)."""
        if self.model_folder is None:
            return {}
        return {"dam_model": model_record(self.model_spec, self.model_folder)}

    def write_files(self, folder: Path, tracking: TrackingArrays, head: HeadAsset, texture_size: int,
                    device: str, sink: EventSink) -> dict[str, float]:
        """textures/footage/NNNNNN.png (unless texture_size is 0); returns stage timings."""
        latent = tracking.optional.get("latent")
        if texture_size == 0 or latent is None or self.model_folder is None:
            return {}
        start = time.perf_counter()
        dam, _ = load_model(self.model_folder, device)
        write_decoded_textures(folder / "textures" / "footage", latent, tracking.head_pose,
                               tracking.frames, dam, head, device, sink)
        return {"decoded_textures": time.perf_counter() - start}
