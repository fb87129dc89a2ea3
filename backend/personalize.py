"""`personalize`: the actor's own face model, made from their footage or from a studio's
digital double of them (issue 15, DESIGN.md "A model folder").

    identity   fit-identity: the default head reshaped to the actor, their albedo fused from
               the frames (backend/identity/personal_head.py)
    head       instead of identity, for a digital double (a head file from Blender's Make Model
               From Double): its landmarks placed and its face region derived
               (backend/heads/digital_double.py); it keeps its own topology
    capture    a lab capture of that head: its ARKit shapes (the default head's deltas, carried
               over unchanged onto the new rest shape) under the lab's cameras and light
    dam        a Deep Appearance Model warm-started from the default model's weights, with the
               normalisation measured on the actor's capture (dam/training.py --init; a double
               of another topology starts the layers sized by its vertex count fresh)
    encoder    the image encoder warm-started from the default model's (encoder/training.py
               --init), on lab renders of the actor's head with the detector run on them
    evaluate   the personal model and the default one on the actor's held-out expressions
               from unseen views (dam/evaluation.py): what the personal model buys in the lab
               (the default model only on a head of its own topology)
    publish    the model folder written (atomically) at --out; the work folder removed

`--budget` is the seconds of training, the DAM and the encoder sharing it (DAM_SHARE); their
step counts are what that budget buys at the rates measured on the reference CPU (2 cores;
docs/personal-model.md), so on that CPU the learning-rate schedules end when the budget does,
and on a faster machine the same steps finish sooner. The budget also stops a training that
runs slower than that (reported, resumable). A training whose loss still fell by more than
STILL_FALLING over its last fifth is reported as cut short, with the budget that would do.

Every stage writes into the work folder (default: in the cache, one per --out) and records
itself in stages.json with its wall time and the process's peak memory; `--resume` skips the
finished stages and continues an interrupted training from its checkpoint.
"""

from __future__ import annotations

import json
import resource
import shutil
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from .cache import cache_dir
from .config_parser import option, positional, report_option, required
from .dam.model_folder import (
    DEFAULT_MODEL,
    ENCODER_JSON,
    ENCODER_WEIGHTS,
    HEAD,
    MODEL_JSON,
    WEIGHTS,
    architecture_of,
    model_destination,
    read_model_info,
)
from .events import EventSink
from .footage import Footage, parse_frame_range
from .formats.atomic import DirectoryKind, atomic_directory, atomic_file, check_replaceable
from .formats.errors import BadInput
from .formats.file_digest import file_digest
from .formats.head_file import HeadAsset, load_head, save_head
from .training_history import still_falling

WORK_FORMAT = 1
TRAINING_STAGES = ("capture", "dam", "encoder", "evaluate")  # after "identity" or a double's "head"
DAM_SHARE = 0.5
# Seconds per training step on the reference CPU (2 cores, torch CPU), measured by `personalize`
# runs (docs/personal-model.md): the DAM at DAM_BATCH, the encoder's image phase at
# ENCODER_BATCH with its short landmark phase spread over it. A step costs more on a head of more
# vertices (the geometry layers, the renders): on the default head (REFERENCE_VERTICES) 0.62 and
# 0.2 s, on the ICT double (26,719 vertices) 0.97 and 0.40 s; between and beyond, the line
# through the two.
REFERENCE_VERTICES = 4792
DAM_SECONDS_PER_STEP = 0.62
ENCODER_SECONDS_PER_STEP = 0.2
DAM_SECONDS_PER_VERTEX_STEP = 1.6e-5
ENCODER_SECONDS_PER_VERTEX_STEP = 9.3e-6
DAM_BATCH = 8
ENCODER_BATCH = 32
ENCODER_LANDMARK_STEPS = 300
STILL_FALLING = 0.05
MINIMUM_STEPS = 20
MODEL_DIRECTORY = DirectoryKind(
    "FaceAdapt model folder", MODEL_JSON, "schema",
    frozenset({MODEL_JSON, WEIGHTS, HEAD, ENCODER_JSON, ENCODER_WEIGHTS}))


@dataclass(frozen=True)
class PersonalizeConfig:
    """What `personalize` does (the command's options); device is a resolved torch device."""

    footage: Path = positional("movie file or folder of images of the actor (one person, turning "
                               "the head), or a digital double's head file (.npz, from Blender's "
                               "Make Model From Double)")
    out: str = required("model folder to write, or a bare name: a model in your models folder "
                        "(`python -m backend models`), then `track --model NAME`")
    frames: str | None = option(None, "A-B, 0-based inclusive source frames (default: all)")
    budget: float = option(600.0, "seconds of training, the DAM and the image encoder together (the "
                                  "identity fit, the capture and the renders come on top)")
    resume: bool = option(False, "continue an interrupted run from its work folder")
    overwrite: bool = option(False, "replace an existing model folder at --out")
    work: Path | None = option(None, "folder of the stages' outputs and checkpoints (default: in the "
                                     "cache, per --out; removed when the model is written)")
    expressions: int = option(400, "expressions in the lab capture of the actor's head (8 views each)")
    encoder_expressions: int = option(600, "expressions the image encoder learns from (3 renders each)")
    sample_frames: int = option(120, "frames examined for head angles, evenly over the range")
    identity_frames: int = option(24, "frames the identity and the albedo are fitted to")
    albedo_size: int = option(512, "texels a side of the albedo fused from the frames")
    shading_steps: int = option(400, "steps refining the identity by the face's shading (fit-identity's "
                                     "--shading-steps; 0: landmarks alone, about two minutes sooner)")
    seed: int = option(0, "seed of the capture, the renders and the trainings")
    json: Path | None = report_option()
    device: str = "cpu"

    def __post_init__(self) -> None:
        if not self.budget > 0:
            raise BadInput(f"--budget {self.budget}: must be a positive number of seconds")
        if self.shading_steps < 0:
            raise BadInput(f"--shading-steps {self.shading_steps}: must be 0 or more")
        if self.from_double and self.frames is not None:
            raise BadInput(f"--frames {self.frames}: {self.footage} is a digital double (a head "
                           "file), not footage; drop --frames")
        if self.expressions < 40 or self.encoder_expressions < 40:
            raise BadInput(f"--expressions {self.expressions} --encoder-expressions "
                           f"{self.encoder_expressions}: each must be 40 or more (a model of fewer "
                           "expressions does not span the face's shapes)")

    @property
    def from_double(self) -> bool:
        """Whether the source is a digital double's head file rather than footage."""
        return Path(self.footage).suffix.lower() == ".npz"


@dataclass(frozen=True)
class TrainingPlan:
    """The steps and the seconds the budget gives each training."""

    dam_steps: int
    dam_budget: float
    encoder_steps: int
    encoder_budget: float

    @staticmethod
    def for_budget(budget: float, vertices: int = REFERENCE_VERTICES) -> TrainingPlan:
        """The plan for `budget` seconds on a head of `vertices` vertices."""
        dam_budget = budget * DAM_SHARE
        encoder_budget = budget - dam_budget
        extra = vertices - REFERENCE_VERTICES
        # Never below half the reference rate: the line is measured on heads of this size or more.
        dam_rate = max(DAM_SECONDS_PER_STEP / 2, DAM_SECONDS_PER_STEP + DAM_SECONDS_PER_VERTEX_STEP * extra)
        encoder_rate = max(ENCODER_SECONDS_PER_STEP / 2,
                           ENCODER_SECONDS_PER_STEP + ENCODER_SECONDS_PER_VERTEX_STEP * extra)
        return TrainingPlan(max(MINIMUM_STEPS, round(dam_budget / dam_rate)), dam_budget,
                            max(MINIMUM_STEPS, round(encoder_budget / encoder_rate)), encoder_budget)


def default_work(out: Path) -> Path:
    """The work folder of --out: in the cache, named after the folder and a digest of its path."""
    import hashlib

    key = hashlib.sha256(str(out.resolve()).encode()).hexdigest()[:12]
    return cache_dir() / "personalize" / f"{out.name}-{key}"


class WorkFolder:
    """stages.json: which stages are done, with their records; the inputs they were made from
    (a resumed run with other inputs is refused)."""

    def __init__(self, path: Path, inputs: dict) -> None:
        self.path, self.inputs = path, inputs
        self.record_path = path / "stages.json"

    def start(self, resume: bool) -> dict:
        """The stages already done ({} for a fresh run); BadInput for an unfinished run without
        --resume, for --resume with nothing to resume, and for a folder made from other inputs."""
        if self.record_path.is_file():
            try:
                document = json.loads(self.record_path.read_text())
                if not isinstance(document, dict) or not isinstance(document.get("stages"), dict):
                    raise ValueError("no 'stages' record")
            except (OSError, ValueError) as exc:
                raise BadInput(f"{self.record_path} cannot be read ({exc}); delete {self.path} to "
                               "start over") from exc
            if not resume:
                raise BadInput(f"{self.path} holds an unfinished personalize run (done: "
                               f"{', '.join(document['stages']) or 'nothing'}); pass --resume to "
                               "continue it; to start over, delete that folder or pass another --work")
            if document.get("format") != WORK_FORMAT or document.get("inputs") != self.inputs:
                changed = sorted(k for k in self.inputs
                                 if document.get("inputs", {}).get(k) != self.inputs[k])
                raise BadInput(f"{self.path} was started with other inputs ({', '.join(changed)} "
                               "differ); run again with the same options, or start over: delete "
                               "that folder or pass another --work")
            return dict(document["stages"])
        if self.path.exists() and any(self.path.iterdir()):
            raise BadInput(f"--work {self.path} is not empty and holds no personalize run; choose "
                           "an empty or new folder")
        if resume:
            raise BadInput(f"--resume: {self.path} holds no run to continue; run without --resume")
        self.path.mkdir(parents=True, exist_ok=True)
        self.save({})
        return {}

    def save(self, stages: dict) -> None:
        with atomic_file(self.record_path) as tmp:
            tmp.write_text(json.dumps({"format": WORK_FORMAT, "inputs": self.inputs,
                                       "stages": stages}, indent=1, allow_nan=False) + "\n")


def peak_memory_mib() -> float:
    """The process's peak resident memory so far (MiB)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024


def run_personalize(config: PersonalizeConfig, sink: EventSink) -> tuple[Path, dict]:
    """Run the stages not yet done, publish the model folder; (its path, the report)."""
    out = model_destination(config.out)
    check_replaceable(out, config.overwrite, MODEL_DIRECTORY, inputs=(config.footage,))
    if config.from_double:
        double = _load_double(config)
        inputs, vertices = _double_inputs(config, double), double.num_vertices
    else:
        footage = Footage(config.footage)
        first, last = parse_frame_range(config.frames, footage.info.frame_count)
        inputs, vertices = _inputs(config, first, last), REFERENCE_VERTICES
    plan = TrainingPlan.for_budget(config.budget, vertices)
    work = WorkFolder(config.work or default_work(out), inputs)
    stages = work.start(config.resume)

    def run_stage(name: str, body: Callable[[], dict]) -> None:
        if name in stages:
            sink.log(f"stage {name}: done in an earlier run")
            return
        start = time.perf_counter()
        record = body()
        stages[name] = {**record, "seconds": round(time.perf_counter() - start, 1),
                        "peak_memory_mib": round(peak_memory_mib())}
        work.save(stages)
        sink.log(f"stage {name}: {stages[name]['seconds']:.0f} s")

    folder = work.path
    if config.from_double:
        run_stage("head", lambda: _double_head(config, folder, sink))
    else:
        run_stage("identity", lambda: _identity(config, folder, sink))
    run_stage("capture", lambda: _capture(config, folder, sink))
    run_stage("dam", lambda: _dam(config, plan, folder, sink))
    run_stage("encoder", lambda: _encoder(config, plan, folder, sink))
    run_stage("evaluate", lambda: _evaluate(config, folder, sink))
    report = personalize_report(config, plan, stages)
    for warning in report["warnings"]:
        sink.warning(warning)
    _publish(folder / "model", out, config.overwrite, report, stages["evaluate"]["personal"])
    shutil.rmtree(folder, ignore_errors=True)
    return out, report


def _inputs(config: PersonalizeConfig, first: int, last: int) -> dict:
    """What the stages' outputs depend on (a resumed run must match)."""
    source = Path(config.footage)
    stat = source.stat()
    return {"footage": str(source.resolve()), "footage_size": stat.st_size,
            "footage_mtime": stat.st_mtime, "frames": [first, last], **_training_inputs(config),
            "sample_frames": config.sample_frames, "identity_frames": config.identity_frames,
            "albedo_size": config.albedo_size, "shading_steps": config.shading_steps}


def _load_double(config: PersonalizeConfig) -> HeadAsset:
    source = Path(config.footage)
    if not source.is_file():
        raise BadInput(f"digital double {source} does not exist: export it again from Blender "
                       "(Make Model From Double)")
    return load_head(source)


def _double_inputs(config: PersonalizeConfig, double: HeadAsset) -> dict:
    """What a double's stages depend on: its content (Blender writes the file again for every
    run, so its bytes differ where its arrays do not)."""
    from .evaluation.suite_cache import head_digest

    return {"double": head_digest(double), **_training_inputs(config)}


def _training_inputs(config: PersonalizeConfig) -> dict:
    return {"expressions": config.expressions, "encoder_expressions": config.encoder_expressions,
            "seed": config.seed, "default_model": file_digest(DEFAULT_MODEL / WEIGHTS)}


def _identity(config: PersonalizeConfig, work: Path, sink: EventSink) -> dict:
    from .identity.identity_fit import IdentityFitConfig
    from .identity.personal_head import FitIdentityConfig, run_fit_identity

    _, report = run_fit_identity(FitIdentityConfig(
        footage=config.footage, out=work / HEAD, frames=config.frames,
        sample_frames=config.sample_frames, identity_frames=config.identity_frames,
        albedo_size=config.albedo_size, overwrite=True, device=config.device,
        fit=IdentityFitConfig(shading_steps=config.shading_steps)), sink)
    return {"report": report}


def _double_head(config: PersonalizeConfig, work: Path, sink: EventSink) -> dict:
    """The double's head file made ready (heads/digital_double.py) and saved as the model's head."""
    from .heads.digital_double import prepare_double

    sink.progress("head", 0, 1)
    head, notes = prepare_double(load_head(Path(config.footage)), str(config.footage))
    save_head(head, work / HEAD)
    sink.progress("head", 1, 1)
    return {"report": {"warnings": notes, "vertices": head.num_vertices,
                       "blendshapes": len(head.blendshape_names),
                       "face_region_vertices": int(head.face_region.sum()),
                       "same_topology_as_default": head.topology_hash == _default_topology()}}


def _default_topology() -> str:
    return load_head(DEFAULT_MODEL / HEAD).topology_hash


def _capture(config: PersonalizeConfig, work: Path, sink: EventSink) -> dict:
    from .lab.capture import CaptureConfig, make_capture

    default = read_model_info(DEFAULT_MODEL)
    capture = CaptureConfig(expressions=config.expressions, cameras=8,
                            texture_size=architecture_of(default, DEFAULT_MODEL).texture_size,
                            seed=config.seed)
    make_capture(load_head(work / HEAD), capture, work / "capture", True, sink, config.device)
    return {"config": asdict(capture)}


def _dam(config: PersonalizeConfig, plan: TrainingPlan, work: Path, sink: EventSink) -> dict:
    from .dam.training import DamTraining, train_dam

    training = DamTraining(batch_size=DAM_BATCH, steps=plan.dam_steps, budget=plan.dam_budget,
                           seed=config.seed, checkpoint_every=50)
    model = work / "model"
    resume = model.exists() and any(model.iterdir())
    train_dam(work / "capture", model, architecture_of(read_model_info(DEFAULT_MODEL), DEFAULT_MODEL),
              training, resume, sink, config.device, initial=DEFAULT_MODEL)
    return {"training": read_model_info(model)["training"]}


def _encoder(config: PersonalizeConfig, plan: TrainingPlan, work: Path, sink: EventSink) -> dict:
    from .encoder.encoder_file import encoder_architecture, read_encoder_info
    from .encoder.training import EncoderTraining, train_encoder

    architecture = encoder_architecture(read_encoder_info(DEFAULT_MODEL))
    # The landmark phase draws half a batch of distinct expressions.
    landmark_batch = min(EncoderTraining.landmark_batch_size, 2 * config.encoder_expressions)
    training = EncoderTraining(steps=plan.encoder_steps, landmark_steps=ENCODER_LANDMARK_STEPS,
                               landmark_batch_size=landmark_batch,
                               budget=plan.encoder_budget, batch_size=ENCODER_BATCH,
                               expressions=config.encoder_expressions, seed=config.seed,
                               checkpoint_every=50)
    encoder_work = work / "encoder"
    resume = (encoder_work / "checkpoint").is_dir()
    train_encoder(work / "model", encoder_work, architecture, training, resume, sink,
                  config.device, initial=DEFAULT_MODEL)
    info = read_encoder_info(work / "model")
    return {"run": info["run"], "metrics": info["metrics"]}


def _evaluate(config: PersonalizeConfig, work: Path, sink: EventSink) -> dict:
    """The personal and the default model on the actor's held-out expressions (4 unseen views)."""
    from .dam.evaluation import evaluate_model

    capture = work / "capture"
    personal = evaluate_model(work / "model", capture, 4, sink, config.device)
    # The default model decodes its own head's topology: it can only be compared on one of it.
    same = load_head(work / HEAD).topology_hash == _default_topology()
    default = evaluate_model(DEFAULT_MODEL, capture, 4, sink, config.device) if same else None
    return {"personal": personal, "default": default}


def personalize_report(config: PersonalizeConfig, plan: TrainingPlan, stages: dict) -> dict:
    """What was made, how long each stage took, how well the trainings converged."""
    first_stage = "identity" if "identity" in stages else "head"
    stage_names = (first_stage, *TRAINING_STAGES)
    source = stages[first_stage]
    warnings = list(source["report"].get("warnings", []))
    dam_run = stages["dam"]["training"]
    encoder_run = stages["encoder"]["run"]
    trainings = {
        "dam": {"steps": dam_run["steps"], "planned_steps": plan.dam_steps,
                "stopped_by_budget": dam_run["stopped_by_budget"],
                "still_falling": round(still_falling(dam_run["loss_curve"]), 3)},
        "encoder": {"steps": encoder_run["steps"], "planned_steps": plan.encoder_steps,
                    "stopped_by_budget": encoder_run["stopped_by_budget"],
                    "still_falling": round(still_falling(encoder_run["loss_curve"]), 3)},
    }
    for name, training in trainings.items():
        if training["stopped_by_budget"]:
            warnings.append(f"the {name} training reached the budget after {training['steps']} of "
                            f"{training['planned_steps']} steps (this machine is slower than the "
                            "reference CPU); a larger --budget lets it finish")
        if training["still_falling"] > STILL_FALLING:
            warnings.append(f"the {name} training had not converged: its loss still fell "
                            f"{100 * training['still_falling']:.0f}% over its last fifth; a larger "
                            f"--budget (e.g. {2 * config.budget:g}) makes a better model")
    evaluation = stages["evaluate"]
    return {
        "footage": str(config.footage),
        "budget_s": config.budget,
        "plan": asdict(plan),
        "capture": stages["capture"]["config"],
        "trainings": trainings,
        "lab_evaluation": {name: _key_figures(evaluation[name]) if evaluation[name] else None
                           for name in ("personal", "default")},
        **({"identity": {k: source["report"].get(k) for k in ("frames_fitted", "yaw_span_deg", "albedo")}}
           if first_stage == "identity" else
           {"double": {k: v for k, v in source["report"].items() if k != "warnings"}}),
        "stages": {name: {"seconds": stages[name]["seconds"],
                          "peak_memory_mib": stages[name]["peak_memory_mib"]} for name in stage_names},
        "seconds": round(sum(stages[name]["seconds"] for name in stage_names), 1),
        "warnings": warnings,
    }


def _key_figures(evaluation: dict) -> dict:
    return {"vertex_error_mm": evaluation["vertex_error_mm"]["mean"],
            "rendered_psnr_db": evaluation["rendered_psnr_db"]}


def _publish(model: Path, out: Path, overwrite: bool, report: dict, metrics: dict) -> None:
    """Copy the model's files to `out` (atomically), model.json extended with the report and
    metrics (the lab evaluation of the personal model)."""
    info = read_model_info(model)
    info["personalized"] = report
    info["metrics"] = metrics
    info["capture"] = (f"lab capture of the personal head ({report['capture']['expressions']} "
                       f"expressions x {report['capture']['cameras']} cameras, seed "
                       f"{report['capture']['seed']}), removed after training")
    info["reproduce"] = (f"python -m backend personalize {report['footage']} --out MODEL "
                         f"--budget {report['budget_s']:g}")
    with atomic_directory(out, overwrite, MODEL_DIRECTORY) as tmp:
        for name in (WEIGHTS, HEAD, ENCODER_JSON, ENCODER_WEIGHTS):
            shutil.copy2(model / name, tmp / name)
        (tmp / MODEL_JSON).write_text(json.dumps(info, indent=1, allow_nan=False) + "\n")
