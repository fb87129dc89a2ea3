"""`python -m backend <command>`: the backend's one CLI (farms run it without Blender).

Each command is one typed config (a dataclass whose fields, defaults and help are its
options; backend/config_parser.py builds the parser from it) and a function of that config.
Library code only ever receives the typed config. Every command also takes `--events`
(JSON-line events on stdout, for the Blender add-on) and `--device auto|cpu|cuda`; a config
with a `device` field receives the resolved device.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import traceback
from collections.abc import Callable
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Literal

from .batch.batch_run import BatchConfig
from .bench.adapt_bench import BenchAdaptConfig, bench_adapt
from .bench.batch_bench import BenchBatchConfig, bench_batch
from .bench.capture_bench import BenchCaptureConfig, bench_capture
from .bench.dam_bench import BenchDamConfig, bench_dam
from .bench.encoder_bench import BenchEncoderConfig, bench_encoder
from .bench.import_bench import BenchImportConfig, bench_import
from .bench.render_bench import BenchRenderConfig, bench_render
from .bench.soak_bench import BenchSoakConfig, bench_soak
from .bench.track_bench import BenchTrackConfig, bench_track
from .config_parser import (
    add_config_arguments,
    config_from_namespace,
    nested,
    option,
    positional,
    report_option,
    required,
)
from .dam.model import DamArchitecture
from .dam.model_folder import ModelsConfig, models_command
from .dam.training import DamTraining
from .device import DEVICE_CHOICES, resolve_device
from .encoder.network import EncoderArchitecture
from .encoder.training import EncoderTraining
from .evaluation.identity_benchmark import IdentityBenchmarkConfig
from .evaluation.identity_error import EvaluateIdentityConfig
from .evaluation.loss_minima import LossMinimaConfig
from .evaluation.personal_benchmark import PersonalBenchmarkConfig
from .evaluation.personal_truth_benchmark import PersonalTruthBenchmarkConfig
from .evaluation.suite import SuiteSettings
from .events import EventSink, cancellable
from .formats import protocol
from .formats.errors import BackendError, BadInput, Cancelled
from .identity.personal_head import FitIdentityConfig
from .lab.capture import CaptureConfig
from .library_log import library_log_path, library_output_to_log
from .personalize import PersonalizeConfig
from .texture_baking import BakeTexturesConfig, run_bake_textures
from .track import TrackSettings


@dataclass(frozen=True)
class Command:
    """One command: its name, one line of help, its config type and what runs it (config,
    sink) -> the result path printed (or "-")."""

    name: str
    help: str
    config: type
    run: Callable[[Any, EventSink], str]


# --- configs of the commands whose library takes plain arguments ---------------------------

@dataclass(frozen=True)
class ExportHeadConfig:
    out: Path = required("head.npz to write")
    head: str = option("default", "'default' (anny), 'ict' (FaceKit from FACEADAPT_DATA) or a path")
    overwrite: bool = option(False, "replace an existing --out")


@dataclass(frozen=True)
class LandmarksReportConfig:
    json: Path | None = report_option()


@dataclass(frozen=True)
class DeriveTableConfig:
    out: Path | None = option(None, "where to write it (default: the committed table)")


@dataclass(frozen=True)
class CaptureCommandConfig:
    out: Path = required("capture folder to create")
    head: str = option("default", "'default', 'ict' or a head.npz path")
    overwrite: bool = option(False, "replace an existing --out")
    capture: CaptureConfig = nested(CaptureConfig)
    device: str = "cpu"


@dataclass(frozen=True)
class TrainDamConfig:
    capture: Path = positional("lab capture folder (python -m backend capture)")
    out: Path = required("model folder (model.json, weights)")
    resume: bool = option(False, "continue from --out/checkpoint.safetensors")
    init: Path | None = option(None, "model folder whose DAM weights training starts from (a warm "
                               "start; same architecture; from another head topology the layers "
                               "sized by the vertex count start fresh)")
    architecture: DamArchitecture = nested(DamArchitecture)
    training: DamTraining = nested(DamTraining)
    device: str = "cpu"


@dataclass(frozen=True)
class TrainEncoderConfig:
    model: Path = positional("model folder (its DAM is kept; encoder.json and encoder.safetensors are "
                             "written into it)")
    work: Path | None = option(None, "folder of rendered views and checkpoints (default: in the cache, "
                               "per model)")
    resume: bool = option(False, "continue from the checkpoint in --work")
    init: Path | None = option(None, "model folder whose image encoder training starts from (a warm "
                               "start; same architecture)")
    architecture: EncoderArchitecture = nested(EncoderArchitecture)
    training: EncoderTraining = nested(EncoderTraining)
    device: str = "cpu"


@dataclass(frozen=True)
class EvaluateModelConfig:
    model: Path = positional("model folder")
    capture: Path | None = option(None, "capture to evaluate on (default: the training one)")
    views: int = option(4, "unseen views per expression")
    json: Path | None = report_option()
    device: str = "cpu"


@dataclass(frozen=True)
class MakeBenchmarkConfig:
    out: Path = required("folder of clip folders (made clips are kept)")
    seed: int = option(0, "seed of the clips' scenes and performances")
    quick: bool = option(False, "the small smoke-test set")
    specs: Path | None = option(None, "JSON list of clip specs instead of the standard set")
    clips: str | None = option(None, "comma-separated names: only these clips of the set")

    def __post_init__(self) -> None:
        if self.specs and self.quick:
            raise BadInput("--quick picks the built-in quick set and --specs your own: pass one")


@dataclass(frozen=True)
class EvaluateConfig:
    results: Path = positional("results directory")
    truth: Path | None = option(None, "clip folder with truth.npz (make-benchmark, render_clip)")
    head: str | None = option(None, "head tracked with (default: the clip's head.npz or the "
                                    "results' model)")
    footage: Path | None = option(None, "real footage (default: the results' source)")
    frame_step: int = option(1, "score every n-th frame in the photometric error (real footage)")
    common_with: tuple[Path, ...] = option((), "other results of the same footage (e.g. tracked with "
                                               "another head): the photometric error only over pixels "
                                               "their faces also cover, so the errors compare (real footage)")
    json: Path | None = report_option()
    device: str = "cpu"

    def __post_init__(self) -> None:
        if self.frame_step < 1:
            raise BadInput(f"--frame-step {self.frame_step}: must be 1 or more")
        if self.common_with and self.truth:
            raise BadInput("--common-with is for real footage (the photometric error); not with --truth")


@dataclass(frozen=True)
class DemoConfig:
    out: Path = option(Path("out"), "folder for the clip, results, preview and .blend")
    frames: int = option(48, "frames to render and track")
    device: str = "cpu"

    def __post_init__(self) -> None:
        if self.frames < 1:
            raise BadInput(f"--frames {self.frames}: must be 1 or more")


# --- what each command runs ----------------------------------------------------------------

def _write_json(report: dict, path: Path | None) -> str:
    text = json.dumps(report, indent=1, allow_nan=False)
    print(text, file=sys.stderr)
    if path:
        from .formats.atomic import atomic_file

        with atomic_file(path) as tmp:
            tmp.write_text(text + "\n")
        return str(path)
    return "-"


def _track(settings: TrackSettings, sink: EventSink) -> str:
    from .track import run_track

    return str(run_track(settings, sink))


def _batch(config: BatchConfig, sink: EventSink) -> str:
    from .batch.batch_run import run_batch

    return str(run_batch(config, sink))


def _export_head(config: ExportHeadConfig, sink: EventSink) -> str:
    from .formats.atomic import check_replaceable_file
    from .formats.head_file import save_head
    from .heads.default_head import resolve_head

    check_replaceable_file(config.out, config.overwrite)
    sink.progress("export-head", 0, 1)
    save_head(resolve_head(config.head), config.out)
    sink.progress("export-head", 1, 1)
    return str(config.out)


def _fit_identity(config: FitIdentityConfig, sink: EventSink) -> str:
    from .identity.personal_head import run_fit_identity

    path, report = run_fit_identity(config, sink)
    _write_json(report, config.json)
    return str(path)


def _personalize(config: PersonalizeConfig, sink: EventSink) -> str:
    from .personalize import run_personalize

    path, report = run_personalize(config, sink)
    _write_json(report, config.json)
    return str(path)


def _personal_benchmark(config: PersonalBenchmarkConfig, sink: EventSink) -> str:
    from .evaluation.personal_benchmark import personal_benchmark

    return _write_json(personal_benchmark(config, sink), config.json)


def _personal_truth_benchmark(config: PersonalTruthBenchmarkConfig, sink: EventSink) -> str:
    from .evaluation.personal_truth_benchmark import personal_truth_benchmark

    return _write_json(personal_truth_benchmark(config, sink), config.json)


def _evaluate_identity(config: EvaluateIdentityConfig, sink: EventSink) -> str:
    from .evaluation.identity_error import evaluate_identity

    return _write_json(evaluate_identity(config), config.json)


def _loss_minima(config: LossMinimaConfig, sink: EventSink) -> str:
    from .evaluation.loss_minima import loss_minima

    return _write_json(loss_minima(config, sink), config.json)


def _identity_benchmark(config: IdentityBenchmarkConfig, sink: EventSink) -> str:
    from .evaluation.identity_benchmark import identity_benchmark

    return _write_json(identity_benchmark(config, sink), config.json)


def _landmarks_report(config: LandmarksReportConfig, sink: EventSink) -> str:
    from .landmarks.report import landmarks_report

    return _write_json(landmarks_report(sink), config.json)


def _derive_mapping(config: DeriveTableConfig, sink: EventSink) -> str:
    from .data_location import data_dir
    from .landmarks.mediapipe_mapping import MAPPING_PATH, derive_mapping, write_mapping

    table = derive_mapping(data_dir() / "landmarks")
    out = config.out or MAPPING_PATH
    write_mapping(table, out)
    sink.log(f"leave-one-out NME per photo: {table['leave_one_out_nme']}")
    return str(out)


def _derive_mirror(config: DeriveTableConfig, sink: EventSink) -> str:
    from .data_location import data_dir
    from .landmarks.mediapipe_mirror import MIRROR_TABLE_PATH, derive_from_photos, write_mirror_table

    table = derive_from_photos(data_dir() / "landmarks")
    out = config.out or MIRROR_TABLE_PATH
    write_mirror_table(table, out)
    sink.log(f"mirror table from {table['photos_used']} photos")
    return str(out)


def _capture(config: CaptureCommandConfig, sink: EventSink) -> str:
    from .heads.default_head import resolve_head
    from .lab.capture import make_capture

    return str(make_capture(resolve_head(config.head), config.capture, config.out, config.overwrite,
                            sink, config.device))


def _train_dam(config: TrainDamConfig, sink: EventSink) -> str:
    from .dam.training import train_dam

    return str(train_dam(config.capture, config.out, config.architecture, config.training,
                         config.resume, sink, config.device, _model_folder(config.init)))


def _model_folder(spec: Path | None) -> Path | None:
    """The model folder an --init names ('default', a user model's name or a path)."""
    from .dam.model_folder import resolve_model

    return None if spec is None else resolve_model(str(spec))


def _train_encoder(config: TrainEncoderConfig, sink: EventSink) -> str:
    from .encoder.training import train_encoder, training_work

    return str(train_encoder(config.model, training_work(config.model, config.work), config.architecture,
                             config.training, config.resume, sink, config.device,
                             _model_folder(config.init)))


def _evaluate_model(config: EvaluateModelConfig, sink: EventSink) -> str:
    from .dam.evaluation import evaluate_model

    report = evaluate_model(config.model, config.capture, config.views, sink, config.device)
    return _write_json(report, config.json)


def _make_benchmark(config: MakeBenchmarkConfig, sink: EventSink) -> str:
    from .evaluation.clip_making import make_clips
    from .evaluation.clip_specs import QUICK_CLIPS, STANDARD_CLIPS, load_specs

    specs = load_specs(config.specs) if config.specs else QUICK_CLIPS if config.quick else STANDARD_CLIPS
    if config.clips:
        wanted = config.clips.split(",")
        unknown = sorted(set(wanted) - {s.name for s in specs})
        if unknown:
            raise BadInput(f"--clips: no clip named {', '.join(unknown)}; the set has "
                           + ", ".join(s.name for s in specs))
        specs = tuple(s for s in specs if s.name in wanted)
    make_clips(specs, config.out, config.seed, sink)
    return str(config.out)


def _evaluate(config: EvaluateConfig, sink: EventSink) -> str:
    from .evaluation.evaluate import evaluate_against_truth, evaluate_real

    if config.truth:
        report, _ = evaluate_against_truth(config.results, config.truth, config.head)
    else:
        report = evaluate_real(config.results, config.footage, config.head, config.device,
                               config.frame_step, sink, config.common_with)
    return _write_json(report, config.json)


def _suite(settings: SuiteSettings, sink: EventSink) -> str:
    from .evaluation.suite import run_suite

    return str(run_suite(settings, sink))


def _demo(config: DemoConfig, sink: EventSink) -> str:
    from .demo import run_demo

    return str(run_demo(config.out, config.frames, config.device, sink))


def _report(benchmark: Callable[[Any, EventSink], dict]) -> Callable[[Any, EventSink], str]:
    """A benchmark as a command: its report printed, and written to the config's --json."""
    return lambda config, sink: _write_json(benchmark(config, sink), config.json)


COMMANDS: tuple[Command, ...] = (
    Command("track", "track footage into a results directory", TrackSettings, _track),
    Command("batch", "track the shots of a shot file (TOML) into --out/<shot>, in this process or on "
            "Ray; resumable; batch.json and batch.md report", BatchConfig, _batch),
    Command("export-head", "write a head file (head.npz)", ExportHeadConfig, _export_head),
    Command("fit-identity", "the default head reshaped to the actor in a clip (MakeHuman identity "
            "fitted to MediaPipe's 478 points), written as a head file", FitIdentityConfig,
            _fit_identity),
    Command("personalize", "the actor's own face model from a clip of them: their head and albedo, a "
            "lab capture of it, the DAM and the image encoder warm-started from the default model; "
            "then `track --model NAME`", PersonalizeConfig, _personalize),
    Command("landmarks-report", "NME of each detector on the annotated photos and the landmark "
            "embedding of the ICT head against its own ids", LandmarksReportConfig,
            _landmarks_report),
    Command("derive-landmark-mapping", "re-derive the MediaPipe 478 -> iBUG-68 table",
            DeriveTableConfig, _derive_mapping),
    Command("derive-mediapipe-mirror", "re-derive which MediaPipe point each point becomes in the "
            "mirrored face (the mirror-averaged detection's table)", DeriveTableConfig, _derive_mirror),
    Command("capture", "lab capture of a head for its face model", CaptureCommandConfig, _capture),
    Command("train-dam", "train a Deep Appearance Model on a capture", TrainDamConfig, _train_dam),
    Command("train-encoder", "train a model's image encoder (frame crop -> DAM code and head pose) on "
            "lab renders of its head", TrainEncoderConfig, _train_encoder),
    Command("evaluate-model", "vertex error and PSNR of a model on held-out data",
            EvaluateModelConfig, _evaluate_model),
    Command("models", "list the model folders (shipped default and the user's models folder)",
            ModelsConfig, models_command),
    Command("bake-textures", "decode a DAM-tracked clip's view-dependent textures for another "
            "camera (textures/<view>/ in the results)", BakeTexturesConfig, run_bake_textures),
    Command("make-benchmark", "render ground-truth clips with Blender (Cycles) and degrade them "
            "like a camera", MakeBenchmarkConfig, _make_benchmark),
    Command("evaluate", "score a results directory against ground truth (--truth) or as real "
            "footage", EvaluateConfig, _evaluate),
    Command("evaluate-identity", "a head's rest shape against a ground-truth clip's head (NoW "
            "protocol: similarity + ICP, point-to-surface over the face), beside the default head's",
            EvaluateIdentityConfig, _evaluate_identity),
    Command("personal-benchmark", "a personal model (personalize) against the default one on the "
            "actor's footage: landmark NME and jitter against an independent detector, photometric "
            "error, decoded-texture PSNR; contact sheets", PersonalBenchmarkConfig, _personal_benchmark),
    Command("personal-truth-benchmark", "a personal model against the default one where the truth "
            "is known: Cycles clips of a stand-in actor (the ICT head coloured unlike the default "
            "one), personalize on one, track the others; point-to-surface error, landmarks, "
            "decoded-texture PSNR", PersonalTruthBenchmarkConfig, _personal_truth_benchmark),
    Command("identity-benchmark", "fit-identity on Cycles clips of known random identities of the "
            "default head: its error beside the default head's", IdentityBenchmarkConfig,
            _identity_benchmark),
    Command("loss-minima", "where the adaptation's losses settle on ground-truth clips of the default "
            "head with the true pose: from the DAM oracle's codes and from the detection oracle's",
            LossMinimaConfig, _loss_minima),
    Command("suite", "every tracker on every evaluation clip (ground truth, real footage, "
            "annotated photos); report", SuiteSettings, _suite),
    Command("demo", "render a clip of the default head in Blender, track it, print errors, write "
            "a preview and a .blend", DemoConfig, _demo),
)
BENCHMARKS: tuple[Command, ...] = (
    Command("track", "frames/s of each stage of track on real footage, peak memory",
            BenchTrackConfig, _report(bench_track)),
    Command("import", "time of Import Results in Blender for a whole tracked clip",
            BenchImportConfig, _report(bench_import)),
    Command("render", "the renderer's primitives per rasterizer candidate", BenchRenderConfig,
            _report(bench_render)),
    Command("dam", "lab capture views/s, DAM training samples/s, peak memory", BenchDamConfig,
            _report(bench_dam)),
    Command("capture", "seconds per lab-capture view of a head in the backend's renderer, EEVEE "
            "and Cycles (the choice for a digital double's capture)", BenchCaptureConfig,
            _report(bench_capture)),
    Command("soak", "a real clip looped to 5,000 frames, tracked and imported, beside 300 frames: "
            "time, peak memory, memory per frame", BenchSoakConfig, _report(bench_soak)),
    Command("adapt", "seconds per frame of the adapted tracker beside the landmark fit, against clip "
            "length and --adapt-texels; peak memory", BenchAdaptConfig, _report(bench_adapt)),
    Command("batch", "shots tracked by a loop of track processes, batch --engine local and batch --engine "
            "ray: wall time, overhead per shot", BenchBatchConfig, _report(bench_batch)),
    Command("encoder", "frames/s of the encoder tracker's stages (crop, encode, decode, ARKit solve; "
            "decoded textures apart) beside the landmark fit and MediaPipe, batch 1 and 32",
            BenchEncoderConfig, _report(bench_encoder)),
)


class _Parser(argparse.ArgumentParser):
    """Usage errors become BadInput, so --events callers get an error event too."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise BadInput(f"{self.prog}: {message} (see --help)")


@dataclass(frozen=True)
class CommonOptions:
    """Options of every command."""

    events: bool = option(False, "write JSON-line events on stdout (for the Blender add-on)")
    device: Literal["auto", "cpu", "cuda"] = option("auto", "torch device (auto: CUDA when available)",
                                                    choices=DEVICE_CHOICES)


def _add_commands(subparsers: argparse._SubParsersAction, commands: tuple[Command, ...]) -> None:
    for command in commands:
        parser = subparsers.add_parser(command.name, help=command.help, description=command.help)
        add_config_arguments(parser, command.config)
        add_config_arguments(parser, CommonOptions)
        parser.set_defaults(command=command)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="python -m backend", description=__doc__.splitlines()[0])
    subparsers = parser.add_subparsers(dest="name", required=True, parser_class=_Parser)
    _add_commands(subparsers, COMMANDS)
    bench = subparsers.add_parser("bench", help="timing benchmarks (print figures, --json to save)")
    _add_commands(bench.add_subparsers(dest="benchmark", required=True, parser_class=_Parser),
                  BENCHMARKS)
    return parser


def parse(argv: list[str]) -> tuple[Command, Any, CommonOptions]:
    """The command, its typed config and the common options; BadInput for bad usage."""
    namespace = build_parser().parse_args(argv)
    command: Command = namespace.command
    common = config_from_namespace(CommonOptions, namespace)
    overrides = {}
    if "device" in {f.name for f in fields(command.config)}:
        overrides["device"] = resolve_device(common.device)
    try:
        config = config_from_namespace(command.config, namespace, **overrides)
    except (TypeError, ValueError) as exc:
        raise BadInput(f"python -m backend {command.name}: {exc}") from exc
    return command, config, common


def _cancel_behind(exc: BaseException) -> Cancelled | None:
    """The Cancelled an exception was raised from, if any: a cancel signal that arrived inside a
    library (seen: Warp loading its native library) comes out as that library's RuntimeError."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, Cancelled):
            return exc
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return None


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    try:
        command, config, common = parse(argv)
    except BadInput as exc:
        EventSink(json_lines="--events" in argv).error(exc.kind, exc.message)
        return exc.exit_code
    log = library_log_path()
    with library_output_to_log(log, argv):
        sink = EventSink(json_lines=common.events)
        try:
            with cancellable():
                path = command.run(config, sink)
        except BackendError as exc:
            sink.error(exc.kind, exc.message)
            return exc.exit_code
        except Exception as exc:
            cancel = _cancel_behind(exc)
            if cancel is not None:  # a library turned our cancel into its own error
                sink.error(cancel.kind, cancel.message)
                return cancel.exit_code
            if os.environ.get("FACEADAPT_DEBUG"):
                traceback.print_exc()
            sink.error(protocol.ERROR_INTERNAL, f"{type(exc).__name__}: {exc} (library messages "
                       f"are in {log}; FACEADAPT_DEBUG=1 prints the traceback)")
            return protocol.EXIT_CODES[protocol.ERROR_INTERNAL]
        sink.result(path)
        return 0
