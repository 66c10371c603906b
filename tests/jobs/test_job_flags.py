"""Every job's flags, as derived from its settings dataclass, are the ones its docs show:
the spark-submit line of the job's docstring names all of them, and the README's job table
names only flags that exist, the required ones among them."""

from __future__ import annotations

import dataclasses
import importlib
import re

import pytest

from notellm2_udf.settings.declared import Flag, flag_names, parse_settings, required_flags
from tests.support.processes import REPO_ROOT

JOBS = sorted(path.stem for path in (REPO_ROOT / "jobs").glob("*.py")
              if path.stem != "__init__")


def settings_of(job: str) -> tuple[object, type]:
    module = importlib.import_module(f"jobs.{job}")
    found = [value for value in vars(module).values()
             if isinstance(value, type) and dataclasses.is_dataclass(value)
             and value.__module__ == module.__name__ and value.__name__.endswith("Settings")]
    assert len(found) == 1, found
    return module, found[0]


def documented_flags(text: str) -> set[str]:
    return set(re.findall(r"--[a-z][a-z0-9-]*", text))


def aliases(cls: type) -> set[str]:
    """Older spellings kept for users' scripts: accepted, no longer shown."""
    found = set()
    for field in dataclasses.fields(cls):
        spec = field.metadata.get("notellm2.flag")
        if isinstance(spec, Flag):
            found |= set(spec.aliases)
        elif dataclasses.is_dataclass(field.default):
            found |= aliases(type(field.default))
    return found


@pytest.mark.parametrize("job", JOBS)
def test_the_docstring_shows_every_flag(job):
    module, cls = settings_of(job)
    command = module.__doc__.split("\n\n")[1]
    assert "spark-submit jobs/" + job + ".py" in command
    assert flag_names(cls) - aliases(cls) == documented_flags(command)


@pytest.mark.parametrize("job", JOBS)
def test_the_readme_job_table_names_real_flags_and_every_required_one(job):
    _, cls = settings_of(job)
    rows = [line for line in (REPO_ROOT / "README.md").read_text().splitlines()
            if line.startswith(f"| {job} |")]
    assert len(rows) == 1
    flags_cell = re.split(r"(?<!\\)\|", rows[0])[2]  # a "\|" inside a cell is text
    shown = documented_flags(flags_cell)
    assert shown - flag_names(cls) == set()
    assert required_flags(cls) <= shown


def test_a_flag_not_given_keeps_the_dataclass_default():
    _, cls = settings_of("related_notes")
    settings = parse_settings(cls, ["--date", "2026-11-25", "--embeddings", "e",
                                    "--index-dir", "i", "--related", "r"])
    assert settings == cls(date="2026-11-25", embeddings="e", index_dir="i", related="r")
    assert parse_settings(cls, ["--date", "2026-11-25", "--embeddings", "e", "--index-dir",
                                "i", "--related", "r", "--top-k", "7"]).top_k == 7


def test_nested_settings_take_their_flags_and_cross_checks_exit_2(capsys):
    _, cls = settings_of("embed_notes")
    required = ["--date", "2026-11-25", "--notes", "n", "--embeddings", "e", "--errors", "r"]
    settings = parse_settings(cls, [*required, "--model", "m", "--batch-size", "64",
                                    "--image-decode", "cpu", "--prepare-processes", "2"])
    assert (settings.encode.batch_size, settings.encode.encoder.image_decode,
            settings.encode.encoder.prepare_processes) == (64, "cpu", 2)
    with pytest.raises(SystemExit) as exit_info:  # exactly one of --model, --models-root
        parse_settings(cls, required)
    assert exit_info.value.code == 2
    with pytest.raises(SystemExit) as exit_info:
        parse_settings(cls, [*required, "--model", "m", "--image-decode", "gpu",
                             "--prepare-processes", "2"])
    assert exit_info.value.code == 2
    assert "does not combine with --prepare-processes" in capsys.readouterr().err
