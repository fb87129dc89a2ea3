"""Options built from typed configs: types, defaults, choices, flags, positionals, refusals."""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import pytest

from backend.config_parser import (
    add_config_arguments,
    command_flags,
    config_from_mapping,
    config_from_namespace,
    nested,
    option,
    positional,
    required,
)


@dataclass(frozen=True)
class Nested:
    steps: int = option(10, "how many")
    kept: float = 0.5  # not an option: stays at its default


@dataclass(frozen=True)
class Example:
    footage: Path = positional("the clip")
    out: Path = required("where to write")
    frames: str | None = option(None, "A-B")
    size: int = option(512, "texels")
    scale: float = option(1.5, "a factor")
    detector: Literal["mediapipe", "fan"] = option("mediapipe", "which detector")
    overwrite: bool = option(False, "replace --out")
    held_out: float = option(0.05, "a fraction", flag="--held")
    others: tuple[Path, ...] = option((), "more results")
    nested: Nested = nested(Nested)
    device: str = "cpu"  # set by the caller, not an option

    def __post_init__(self) -> None:
        if self.size < 0:
            raise ValueError("--size must be >= 0")


def _parse(*argv: str) -> Example:
    parser = argparse.ArgumentParser()
    add_config_arguments(parser, Example)
    return config_from_namespace(Example, parser.parse_args(argv))


def test_defaults_types_and_flags():
    config = _parse("clip.mp4", "--out", "res")
    assert config == Example(Path("clip.mp4"), Path("res"))
    assert config.size == 512 and config.frames is None and not config.overwrite
    config = _parse("clip.mp4", "--out", "res", "--frames", "3-9", "--size", "64",
                    "--scale", "0.5", "--detector", "fan", "--overwrite")
    assert (config.frames, config.size, config.scale, config.detector, config.overwrite) == \
        ("3-9", 64, 0.5, "fan", True)
    assert config.nested == Nested() and config.held_out == 0.05 and config.device == "cpu"
    config = _parse("clip.mp4", "--out", "res", "--steps", "3", "--held", "0.5")
    assert config.nested == Nested(steps=3) and config.held_out == 0.5


def test_a_tuple_option_is_given_once_per_value():
    assert _parse("clip.mp4", "--out", "res").others == ()
    config = _parse("clip.mp4", "--out", "res", "--others", "a", "--others", "b/c")
    assert config.others == (Path("a"), Path("b/c"))
    flags = command_flags(config)
    assert flags == ["--others a", "--others b/c"]
    assert _parse("clip.mp4", "--out", "res", *[p for f in flags for p in f.split()]) == config
    given = {"footage": "clip.mp4", "out": "res"}
    config, problems = config_from_mapping(Example, {**given, "others": ["a", "b"]}, "shot")
    assert problems == [] and config.others == (Path("a"), Path("b"))
    _, problems = config_from_mapping(Example, {**given, "others": "a"}, "shot")
    assert problems == ["shot: field 'others' = 'a': must be a list"]
    _, problems = config_from_mapping(Example, {**given, "others": ["a", 3]}, "shot")
    assert problems == ["shot: field 'others' = ['a', 3]: must be a string"]


def test_a_repeated_option_cannot_be_required():
    @dataclass(frozen=True)
    class Broken:
        inputs: tuple[Path, ...] = required("inputs")

    with pytest.raises(TypeError, match="a repeated option is optional"):
        add_config_arguments(argparse.ArgumentParser(), Broken)


@pytest.mark.parametrize("argv", [
    ("clip.mp4",),  # --out required
    ("--out", "res"),  # positional required
    ("clip.mp4", "--out", "res", "--detector", "dlib"),  # not a choice
    ("clip.mp4", "--out", "res", "--size", "big"),  # not an int
    ("clip.mp4", "--out", "res", "--nested", "3"),  # not an option
    ("clip.mp4", "--out", "res", "--kept", "3"),  # not declared as an option
    ("clip.mp4", "--out", "res", "--device", "cuda"),  # set by the caller only
    ("clip.mp4", "--out", "res", "--held-out", "0.5"),  # the field names its own flag
    ("clip.mp4", "--out", "res", "--scale", "inf"),  # float options are finite (issue 11)
    ("clip.mp4", "--out", "res", "--scale", "-Infinity"),
    ("clip.mp4", "--out", "res", "--held", "nan"),
])
def test_refused(argv):
    with pytest.raises(SystemExit):
        _parse(*argv)


def test_the_config_validates_itself():
    with pytest.raises(ValueError, match="--size"):
        _parse("clip.mp4", "--out", "res", "--size", "-1")


def test_overrides_and_help_shows_defaults():
    parser = argparse.ArgumentParser()
    add_config_arguments(parser, Example)
    assert "(default: 512)" in parser.format_help()
    config = config_from_namespace(Example, parser.parse_args(["c", "--out", "o"]), size=7,
                                   device="cuda")
    assert config.size == 7 and config.device == "cuda"


def test_command_flags_give_back_the_options_that_differ():
    config = _parse("clip.mp4", "--out", "res", "--size", "64", "--scale", "0.25", "--overwrite",
                    "--held", "0.1")
    flags = command_flags(config, always=("detector",))
    assert flags == ["--size 64", "--scale 0.25", "--detector mediapipe", "--overwrite", "--held 0.1"]
    argv = [part for flag in flags for part in flag.split()]
    assert _parse("clip.mp4", "--out", "res", *argv) == config
