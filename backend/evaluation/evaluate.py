"""`evaluate RESULTS [--truth CLIP]`: score one results directory.

With `--truth`, against a rendered clip's ground truth (a make-benchmark clip folder, or any
folder with truth.npz from blender_addon.render_clip); without, as real footage: agreement
with an independent detector, jitter, photometric error and the fraction of frames tracked.
"""

from __future__ import annotations

from pathlib import Path

from ..events import EventSink
from ..formats.clip_files import load_truth
from ..formats.errors import BadInput
from ..formats.head_file import HeadAsset, load_head
from ..formats.results_dir import check_topology, read_results
from .truth_metrics import TruthErrors, truth_errors


def head_for_results(document: dict, head_spec: str | None) -> HeadAsset:
    """The head a results directory was tracked with: `head_spec` ('default', 'ict', a path) or
    the model id its result.json records."""
    from ..heads.default_head import resolve_head

    if head_spec is None and isinstance(document.get("dam_model"), dict):
        from ..dam.model_folder import load_model_head

        return load_model_head(Path(document["dam_model"]["path"]))  # a face-model tracker's
    if head_spec is None:
        model = str(document.get("model", ""))
        head_spec = "default" if model.startswith("default-") else model
    if not head_spec:
        raise BadInput("result.json names no head model; pass --head default|ict|PATH")
    return resolve_head(head_spec)


def evaluate_against_truth(results_dir: Path, clip: Path, head_spec: str | None,
                           ) -> tuple[dict, TruthErrors]:
    """Truth metrics of results_dir against the clip; the head is the clip's head.npz when it
    has one, else `head_spec` / the results' model. Returns the JSON-ready report and the
    errors with their per-frame and per-vertex arrays."""
    results = read_results(results_dir)
    document, tracking = results.document, results.tracking
    truth = load_truth(clip).as_arrays()
    clip_head = clip / "head.npz" if clip.is_dir() else None
    if head_spec is None and clip_head is not None and clip_head.is_file():
        head, head_name = load_head(clip_head), str(clip_head)
    else:
        head = head_for_results(document, head_spec)
        head_name = head_spec or str(document.get("model"))
    check_topology(results, head_name, head.num_vertices, head.topology_hash)
    errors = truth_errors(tracking, truth, head)
    report = {"kind": "truth", "results": str(results_dir), "truth": str(clip),
              "tracker": document.get("tracker"), **errors.as_dict()}
    return report, errors


def evaluate_real(results_dir: Path, footage: Path | None, head_spec: str | None, device: str,
                  frame_step: int, sink: EventSink, common_with: tuple[Path, ...] = ()) -> dict:
    """Real-footage metrics of results_dir (footage: the results' source unless given); the
    photometric error only over pixels the faces of the `common_with` results (each with the
    head its result.json records) also cover."""
    from .face_coverage import read_coverages
    from .real_metrics import evaluate_real_clip

    results = read_results(results_dir)
    document = results.document
    head = head_for_results(document, head_spec)  # evaluate_real_clip checks its topology
    tracking, source = results.tracking, document.get("source") or {}
    size = (source["width"], source["height"]) if source.get("width") and source.get("height") else None
    others = read_coverages(list(common_with), lambda other: head_for_results(other, None),
                            tracking["frames"][tracking["confidence"] > 0], size)
    metrics = evaluate_real_clip(results_dir, footage, head, device, frame_step, sink, others)
    return {"kind": "real", "results": str(results_dir), "tracker": document.get("tracker"),
            **metrics}
