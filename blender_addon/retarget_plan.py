"""Retargeting a tracked performance onto another character, computed without bpy: the ARKit
weights onto a target mesh's shape keys (any topology: only the keys' names matter), and the
head's rotation onto a bone of any armature.

Weights: each ARKit channel drives the target key of the same name in whatever spelling the
mesh's author used (arkit_names.match_shape_keys; ambiguous names are reported, never guessed).
The values are optionally smoothed, then clamped to the channel's bounds.

Smoothing is a centred moving average over `smoothing` tracked frames (an even count is rounded
up to the next odd one, so the window stays centred; 0 and 1 leave the values as tracked). At
the ends the window is cut short and averages the frames that exist, so the first and last
values stay near the tracked ones rather than being pulled toward zero. The average runs over
the tracked samples in order: results always hold consecutive source frames.

Head pose: the head's motion since its first tracked frame, inv(P_0) @ P_t for head-to-camera
poses P, is a rigid motion of head space (+Z up, the face toward -Y: Blender's convention for a
character, and the world Import Results places the head in, upright at the origin on its first
frame). `bone_pose_keys` applies that motion in the target armature's own axes, taken as a
character modelled the same way, so rotating the armature object to face elsewhere turns the
motion with it; see there for how any bone orientation is handled.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .arkit_names import ChannelMatch, match_shape_keys

DEFAULT_BOUNDS = (0.0, 1.0)


@dataclass
class RetargetPlan:
    """What a retarget writes: `values` (F,) per matched target key (in the order the target
    lists its keys), from the ARKit channel `match.pairs` names; `clamped` counts, per target
    key, the frames its bounds changed; `bounds` per target key."""

    values: dict[str, np.ndarray]
    match: ChannelMatch
    bounds: dict[str, tuple[float, float]]
    clamped: dict[str, int]
    smoothing: int

    def report(self) -> dict[str, Any]:
        """The full table as JSON-able data (stored on the target, printed by the operator)."""
        source_of = {target: source for source, target in self.match.pairs.items()}
        channels = []
        for target, values in self.values.items():
            lower, upper = self.bounds[target]
            channels.append({"channel": source_of[target], "shape_key": target,
                             "lower": lower, "upper": upper, "clamped_frames": self.clamped[target],
                             "min": float(values.min()), "max": float(values.max())})
        return {
            "matched": channels,
            "unmatched_channels": list(self.match.unmatched_sources),
            "unmatched_shape_keys": list(self.match.unmatched_targets),
            "ambiguous": [{"canonical": a.canonical, "channels": list(a.sources),
                           "shape_keys": list(a.targets)} for a in self.match.ambiguous],
            "smoothing": self.smoothing,
        }

    def summary(self) -> str:
        """One line: how many keys are driven and what was left over."""
        parts = [f"{len(self.values)} shape key(s) driven"]
        if self.match.unmatched_targets:
            parts.append(f"{len(self.match.unmatched_targets)} shape key(s) unmatched")
        if self.match.unmatched_sources:
            parts.append(f"{len(self.match.unmatched_sources)} ARKit channel(s) unmatched")
        if self.match.ambiguous:
            names = ", ".join("/".join(a.targets) for a in self.match.ambiguous)
            parts.append(f"{len(self.match.ambiguous)} ambiguous ({names}): rename to choose")
        clamped = sum(1 for count in self.clamped.values() if count)
        if clamped:
            parts.append(f"{clamped} clamped to their bounds")
        return ", ".join(parts)


def format_report(report: Mapping[str, Any]) -> str:
    """`RetargetPlan.report()` as a plain-text table, one line per channel."""
    lines = [f"{'ARKit channel':<22} {'shape key':<28} {'min':>7} {'max':>7} clamped"]
    for row in report["matched"]:
        lines.append(f"{row['channel']:<22} {row['shape_key']:<28} {row['min']:>7.3f} "
                     f"{row['max']:>7.3f} {row['clamped_frames']}")
    for ambiguous in report["ambiguous"]:
        lines.append(f"ambiguous: {', '.join(ambiguous['channels'])} -> "
                     f"{', '.join(ambiguous['shape_keys'])}")
    if report["unmatched_channels"]:
        lines.append(f"unmatched ARKit channels: {', '.join(report['unmatched_channels'])}")
    if report["unmatched_shape_keys"]:
        lines.append(f"unmatched shape keys: {', '.join(report['unmatched_shape_keys'])}")
    return "\n".join(lines)


def moving_average(values: np.ndarray, smoothing: int) -> np.ndarray:
    """Centred moving average along axis 0 of `values` (F, ...) over `smoothing` frames (even
    counts rounded up to odd; 0 or 1: a copy), the window cut short at the ends."""
    values = np.asarray(values, dtype=np.float64)
    if smoothing < 0:
        raise ValueError(f"smoothing must be 0 or more frames, got {smoothing}")
    half = smoothing // 2
    if half == 0 or len(values) < 2:
        return values.copy()
    padded = np.concatenate([np.zeros((1, *values.shape[1:])), np.cumsum(values, axis=0)])
    index = np.arange(len(values))
    start = np.maximum(index - half, 0)
    stop = np.minimum(index + half + 1, len(values))
    count = (stop - start).reshape(-1, *([1] * (values.ndim - 1)))
    return (padded[stop] - padded[start]) / count


def plan_retarget(weights: np.ndarray, weight_names: Sequence[str], target_names: Sequence[str],
                  lower: float = DEFAULT_BOUNDS[0], upper: float = DEFAULT_BOUNDS[1],
                  smoothing: int = 0, bounds: Mapping[str, tuple[float, float]] | None = None,
                  ) -> RetargetPlan:
    """The values of each target shape key (`target_names`, the target's keys without its
    reference key) from tracked `weights` (F, K) named `weight_names` (K,). Every channel is
    smoothed (`moving_average`), then clamped to [lower, upper], or to `bounds[channel]` for
    the ARKit channels named there. ValueError for mismatched shapes or bounds."""
    weights = np.asarray(weights, dtype=np.float64)
    names = [str(name) for name in weight_names]
    if weights.ndim != 2 or weights.shape[1] != len(names):
        raise ValueError(f"weights must be (frames, {len(names)}) for {len(names)} names, got "
                         f"{weights.shape}")
    overrides = dict(bounds or {})
    for channel, (low, high) in {"all channels": (lower, upper), **overrides}.items():
        if not low <= high:
            raise ValueError(f"the lower bound {low:g} of {channel} is above its upper bound "
                             f"{high:g}")
    match = match_shape_keys(list(target_names), names)
    smoothed = moving_average(weights, smoothing)
    column = {name: k for k, name in enumerate(names)}
    source_of = {target: source for source, target in match.pairs.items()}
    values: dict[str, np.ndarray] = {}
    channel_bounds: dict[str, tuple[float, float]] = {}
    clamped: dict[str, int] = {}
    for target in target_names:  # the target's own order
        if target not in source_of:
            continue
        low, high = overrides.get(source_of[target], (lower, upper))
        raw = smoothed[:, column[source_of[target]]]
        values[target] = np.clip(raw, low, high)
        channel_bounds[target] = (float(low), float(high))
        clamped[target] = int(np.count_nonzero((raw < low) | (raw > high)))
    return RetargetPlan(values, match, channel_bounds, clamped, smoothing)


@dataclass
class BonePoseKeys:
    """Pose-bone channels per frame: `quaternions` (F, 4) (w, x, y, z), consecutive ones on
    one hemisphere (no spins between keys); `locations` (F, 3) in the bone's local axes and
    its armature's units."""

    quaternions: np.ndarray
    locations: np.ndarray
    basis: np.ndarray = field(repr=False)  # (F, 4, 4) the pose bones' matrix_basis


def head_motion(head_pose: np.ndarray) -> np.ndarray:
    """(F, 4, 4) rigid motion of head space since the first frame, inv(P_0) @ P_t, of
    head-to-camera poses P (F, 4, 4): identity on the first frame; its rotation is the head's
    turn expressed in the axes head space had on the first frame."""
    poses = np.asarray(head_pose, dtype=np.float64)
    if poses.ndim != 3 or poses.shape[1:] != (4, 4) or len(poses) == 0:
        raise ValueError(f"head poses must be (frames, 4, 4), got {poses.shape}")
    return np.linalg.inv(poses[0]) @ poses


def bone_pose_keys(head_pose: np.ndarray, bone_rest: np.ndarray, units_per_metre: float = 1.0,
                   with_location: bool = False) -> BonePoseKeys:
    """The matrix_basis per frame that turns a bone as the tracked head turns.

    bone_rest (4, 4): the bone's rest matrix in armature space (Blender's `bone.matrix_local`,
    rotation R_b, head position p). The head's motion (`head_motion`: rotation Q_t, pivot
    displacement d_t in metres) is wanted in armature space: the bone's rest orientation turned
    by Q_t about the bone's own head, i.e. the armature-space pose [Q_t R_b, p + d_t]. Its
    matrix_basis (pose relative to rest, parent at rest) is therefore
        M_t = inv(bone_rest) @ [Q_t R_b, p + d_t] = [R_b^T Q_t R_b, R_b^T d_t]:
    Q_t conjugated into the bone's rest frame, which is what lets a bone pointing anywhere
    (along the neck, along +X, rolled) turn about the same armature axes as the head. A posed
    parent bone composes on top, as for any child. d_t (the head-space origin's displacement,
    at the neck pivot) is scaled by `units_per_metre` (1 / the armature object's scale) and
    kept only `with_location`; otherwise the locations are 0."""
    rest = np.asarray(bone_rest, dtype=np.float64)
    rotation = rest[:3, :3]
    if rest.shape != (4, 4) or not np.allclose(rotation @ rotation.T, np.eye(3), atol=1e-4):
        raise ValueError("the bone's rest matrix must be a rigid (4, 4) transform")
    motion = head_motion(head_pose)
    turn = rotation.T @ motion[:, :3, :3] @ rotation
    displacement = motion[:, :3, 3] * units_per_metre if with_location else np.zeros((len(motion), 3))
    locations = displacement @ rotation  # R_b^T d per frame
    basis = np.tile(np.eye(4), (len(motion), 1, 1))
    basis[:, :3, :3] = turn
    basis[:, :3, 3] = locations
    return BonePoseKeys(continuous(rotation_quaternions(turn)), locations, basis)


def rotation_quaternions(rotations: np.ndarray) -> np.ndarray:
    """(F, 4) unit quaternions (w, x, y, z) with w >= 0 of rotation matrices (F, 3, 3)."""
    r = np.asarray(rotations, dtype=np.float64)
    # Each of the four candidates is stable where its component is the largest (Shepperd).
    trace = np.trace(r, axis1=1, axis2=2)
    candidates = np.stack([
        np.stack([1 + trace, r[:, 2, 1] - r[:, 1, 2], r[:, 0, 2] - r[:, 2, 0], r[:, 1, 0] - r[:, 0, 1]], 1),
        np.stack([r[:, 2, 1] - r[:, 1, 2], 1 + 2 * r[:, 0, 0] - trace, r[:, 0, 1] + r[:, 1, 0],
                  r[:, 0, 2] + r[:, 2, 0]], 1),
        np.stack([r[:, 0, 2] - r[:, 2, 0], r[:, 0, 1] + r[:, 1, 0], 1 + 2 * r[:, 1, 1] - trace,
                  r[:, 1, 2] + r[:, 2, 1]], 1),
        np.stack([r[:, 1, 0] - r[:, 0, 1], r[:, 0, 2] + r[:, 2, 0], r[:, 1, 2] + r[:, 2, 1],
                  1 + 2 * r[:, 2, 2] - trace], 1),
    ], axis=1)  # (F, 4 candidates, 4)
    diagonal = np.stack([trace, r[:, 0, 0], r[:, 1, 1], r[:, 2, 2]], 1)
    chosen = candidates[np.arange(len(r)), np.argmax(diagonal, axis=1)]
    chosen /= np.linalg.norm(chosen, axis=1, keepdims=True)
    return chosen * np.where(chosen[:, :1] < 0, -1.0, 1.0)


def continuous(quaternions: np.ndarray) -> np.ndarray:
    """(F, 4) with signs flipped so consecutive quaternions stay on one hemisphere."""
    out = np.array(quaternions, dtype=np.float64)
    for i in range(1, len(out)):
        if np.dot(out[i], out[i - 1]) < 0:
            out[i] = -out[i]
    return out
