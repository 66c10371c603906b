"""Settings declared once: the parser derived from a dataclass keeps its defaults, nests
settings, enforces groups and reports checks across fields as usage errors (exit 2)."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from notellm2_udf.settings.declared import (
    flag_defaults,
    flag_names,
    nested,
    option,
    parse_settings,
    required,
    required_flags,
)
from notellm2_udf.settings.values import comma_list, positive_int_arg


@dataclass(frozen=True)
class Inner:
    batch: int = option(8, parse=positive_int_arg, help="rows per batch")
    fast: bool = option(False, help="go fast")
    careful: bool = option(True, name="--no-care", negate=True, help="skip the care")


@dataclass(frozen=True)
class Recipe:
    model: str = required(name="--init-model", help="where to start")
    rate: float = option(0.5, parse=float, help="step size")


@dataclass(frozen=True)
class Outer:
    REQUIRED_GROUPS = ("source",)

    table: str = required(help="the table")
    recipe: Recipe = nested(Recipe)
    ks: tuple[int, ...] = option((1, 10), parse=comma_list(positive_int_arg), help="K values")
    path: str | None = option(None, exclusive="source", help="a path")
    root: str | None = option(None, exclusive="source", help="a root")
    sample: int = option(200, parse=positive_int_arg, aliases=("--sample-size",), help="n")
    inner: Inner = Inner()

    def __post_init__(self) -> None:
        if self.sample > 1000:
            raise ValueError("--sample over 1000")


BASE = ["--table", "t", "--init-model", "m", "--path", "p"]


def test_flags_not_given_keep_the_dataclass_defaults():
    settings = parse_settings(Outer, BASE)
    assert settings == Outer(table="t", recipe=Recipe(model="m"), path="p")
    assert settings.inner == Inner(batch=8, fast=False, careful=True)
    assert settings.ks == (1, 10) and settings.recipe.rate == 0.5


def test_given_flags_reach_nested_settings_with_their_types():
    settings = parse_settings(Outer, BASE + ["--batch", "3", "--fast", "--no-care", "--rate",
                                             "0.25", "--ks", "5,50", "--sample-size", "7"])
    assert settings.inner == Inner(batch=3, fast=True, careful=False)
    assert settings.recipe == Recipe(model="m", rate=0.25)
    assert settings.ks == (5, 50) and settings.sample == 7


@pytest.mark.parametrize("argv, message", [
    (["--init-model", "m", "--path", "p"], "--table"),
    (["--table", "t", "--path", "p"], "--init-model"),
    (["--table", "t", "--init-model", "m"], "one of the arguments --path --root"),
    (BASE + ["--root", "r"], "not allowed with argument"),
    (BASE + ["--batch", "0"], "must be >= 1"),
    (BASE + ["--sample", "5000"], "--sample over 1000"),
])
def test_bad_command_lines_exit_2_naming_the_problem(argv, message, capsys):
    with pytest.raises(SystemExit) as exit_info:
        parse_settings(Outer, argv)
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


def test_the_declaration_lists_its_flags_defaults_and_required_ones():
    assert flag_names(Outer) == {"--table", "--init-model", "--rate", "--ks", "--path",
                                 "--root", "--sample", "--sample-size", "--batch", "--fast",
                                 "--no-care"}
    assert required_flags(Outer) == {"--table", "--init-model"}
    defaults = flag_defaults(Outer)
    assert defaults["--sample"] == 200 and defaults["--rate"] == 0.5
    assert defaults["--ks"] == (1, 10) and defaults["--no-care"] is True
    assert "--table" not in defaults
