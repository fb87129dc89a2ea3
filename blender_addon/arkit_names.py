"""Matching ARKit blendshape channels to a target mesh's shape keys for retargeting, whatever
spelling the mesh's author used: `eyeBlink_L`, `EyeBlinkLeft`, `eye_blink_left`, `eyeBlinkL`,
`eyeBlink.L`, `Eye_Blink_Left` all name ARKit's `eyeBlinkLeft`.

A name's canonical form is its words, lower case, run together, with a final side word `L`/`R`
spelled `left`/`right`: `eyeBlink.L` -> `eyeblinkleft`. Names are matched by canonical form;
where one form names several keys (or several channels) the match is reported as ambiguous
and left to the user, never guessed, unless exactly one of them is spelled identically.
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass, field

# The 52 channels in Apple's spelling, from the one list the whole project uses.
from ..backend.heads.arkit import ARKIT_NAMES

__all__ = ["ARKIT_NAMES", "AmbiguousMatch", "ChannelMatch", "canonical_name", "match_shape_keys"]

# Words: a capitalised or lower-case run, an upper-case run not followed by lower case
# (`EYE`, or the `L` of `eyeBlinkL`), or digits (`.001` of a duplicated key stays significant).
_WORD = re.compile(r"[A-Z]?[a-z]+|[A-Z]+(?![a-z])|\d+")
_SIDES = {"l": "left", "left": "left", "r": "right", "right": "right"}


def canonical_name(name: str) -> str:
    """`eyeBlink_L`, `EyeBlinkLeft`, `eye_blink_left`, `eyeBlinkL`, `eyeBlink.L` ->
    `eyeblinkleft`; a name with no words -> ''."""
    words = [word.lower() for word in _WORD.findall(name)]
    if words:
        words[-1] = _SIDES.get(words[-1], words[-1])
    return "".join(words)


@dataclass(frozen=True)
class AmbiguousMatch:
    """Names that share a canonical form: which source channel drives which key is left to
    the user."""

    canonical: str
    sources: tuple[str, ...]
    targets: tuple[str, ...]


@dataclass
class ChannelMatch:
    """source channel -> target shape key; what is left over on each side, and the
    ambiguities (their names appear in no other field)."""

    pairs: dict[str, str] = field(default_factory=dict)
    unmatched_sources: list[str] = field(default_factory=list)
    unmatched_targets: list[str] = field(default_factory=list)
    ambiguous: list[AmbiguousMatch] = field(default_factory=list)


def match_shape_keys(target_names: list[str], source_names: list[str]) -> ChannelMatch:
    """Pair each source channel (e.g. ARKIT_NAMES, or a results file's weight_names) with the
    target shape key of the same canonical name. Lists keep the order of the inputs."""
    targets_by_form: dict[str, list[str]] = defaultdict(list)
    for name in target_names:
        targets_by_form[canonical_name(name)].append(name)
    sources_by_form: dict[str, list[str]] = defaultdict(list)
    for name in source_names:
        sources_by_form[canonical_name(name)].append(name)
    match = ChannelMatch()
    settled: set[str] = set()  # target names paired or reported ambiguous
    for form, sources in sources_by_form.items():
        targets = targets_by_form.get(form, []) if form else []
        if not targets:
            match.unmatched_sources.extend(sources)
            continue
        if len(sources) == 1 and len(targets) == 1:
            match.pairs[sources[0]] = targets[0]
        elif len(sources) == 1 and targets.count(sources[0]) == 1:
            # The identical spelling is not a guess: `eyeBlinkLeft` drives `eyeBlinkLeft` even
            # when the mesh also has an `eyeBlink_L` (often a corrective of the author's own);
            # the other similar keys stay unmatched.
            match.pairs[sources[0]] = sources[0]
            settled.add(sources[0])
            continue
        else:
            match.ambiguous.append(AmbiguousMatch(form, tuple(sources), tuple(targets)))
        settled.update(targets)
    match.unmatched_targets = [name for name in target_names if name not in settled]
    return match
