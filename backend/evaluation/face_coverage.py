"""Which pixels of the footage a track's face region covers, so that two tracks of one clip with
different heads (the default head and an actor's wider personal one) can be scored on the same
pixels: an error over more pixels, reaching into cheeks, hair or background, is not comparable
with one over fewer (docs/identity.md, real footage).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..formats.camera import head_to_camera
from ..formats.errors import BadInput
from ..formats.head_file import HeadAsset
from ..formats.results_dir import check_topology, read_results
from ..render.rasterize import project, rasterize

Window = tuple[int, int, int, int]  # pixel box (x0, y0, x1, y1) of the footage, end exclusive


@dataclass(frozen=True, eq=False)  # holds arrays: compared by identity
class FaceCoverage:
    """A track (tracking.npz arrays: frames, vertices, head_pose, intrinsics, confidence) and the
    head it was tracked with; `label` names it in messages and reports."""

    tracking: dict[str, np.ndarray]
    head: HeadAsset
    label: str

    def mask(self, frame: int, window: Window, device: str = "cpu") -> torch.Tensor:
        """(y1 - y0, x1 - x0) bool on `device`: pixels of `window` (footage pixels, centres at
        integers) covered by the face region's triangles in source frame `frame`, occlusion by
        the rest of the head included; all False where this track has no such tracked frame."""
        x0, y0, x1, y1 = window
        dev = torch.device(device)
        rows = np.flatnonzero((self.tracking["frames"] == frame) & (self.tracking["confidence"] > 0))
        if len(rows) == 0:
            return torch.zeros(y1 - y0, x1 - x0, dtype=torch.bool, device=dev)
        row = int(rows[0])
        camera = head_to_camera(self.tracking["vertices"][row], self.tracking["head_pose"][row])
        screen = project(torch.as_tensor(camera, dtype=torch.float32, device=dev)[None],
                         torch.as_tensor(self.tracking["intrinsics"], dtype=torch.float32, device=dev))
        screen = screen - torch.tensor([x0, y0, 0.0], device=dev)
        faces = torch.as_tensor(self.head.faces, device=dev)
        fragments = rasterize(screen, faces, y1 - y0, x1 - x0)
        return fragments.showing(torch.as_tensor(self.head.face_triangles))[0]


def read_coverages(results_dirs: list[Path], head_of: Callable[[dict], HeadAsset], frames: np.ndarray,
                   size: tuple[int, int] | None) -> list[FaceCoverage]:
    """FaceCoverage of each results directory, its head from `head_of(document)`. BadInput,
    before any scoring, for one tracked on footage of another size than `size` (width, height
    of the footage being scored; None: unknown) or that tracked none of `frames` (the source
    frames being scored): either would leave no pixel to compare, or the wrong ones."""
    coverages = []
    for folder in results_dirs:
        results = read_results(folder)
        source = results.document.get("source") or {}
        other_size = (source.get("width"), source.get("height"))
        if size is not None and None not in other_size and tuple(other_size) != tuple(size):
            raise BadInput(f"{folder} was tracked on {other_size[0]}x{other_size[1]} footage, the results "
                           f"being scored on {size[0]}x{size[1]}: compare results of the same footage")
        head = head_of(results.document)
        check_topology(results, f"the head of {folder}", head.num_vertices, head.topology_hash)
        tracking = results.tracking
        tracked = tracking["frames"][tracking["confidence"] > 0]
        if not np.isin(frames, tracked).any():
            span = f"{int(frames[0])}-{int(frames[-1])}" if len(frames) else "none"
            raise BadInput(f"{folder} tracked none of the frames being scored ({span}): compare "
                           "results of the same footage and frames")
        coverages.append(FaceCoverage(tracking, head, str(folder)))
    return coverages


def coverages_of_others(tracks: dict[str, dict[str, np.ndarray]], heads: dict[str, HeadAsset],
                        label: str) -> list[FaceCoverage]:
    """The coverage of every track in `tracks` (by label, each with its head in `heads`) but
    `label`'s: what one model's figures are restricted to when models are compared."""
    return [FaceCoverage(tracks[other], heads[other], other) for other in tracks if other != label]
