"""The DAG catalogue against the jobs: every flag a DAG setting feeds is a flag of that job,
and where the catalogue has a default, the job declares the same one (a job run by hand and
the DAG's run of it behave alike)."""

from __future__ import annotations

import dataclasses
import importlib
import sys

import pytest

from notellm2_udf.settings.declared import flag_defaults, flag_names, required_flags
from tests.support.airflow_env import DAG_FOLDER

sys.path.insert(0, str(DAG_FOLDER))
catalogue = importlib.import_module("notellm2_catalogue")
sys.path.remove(str(DAG_FOLDER))

CATALOGUES = {"daily": catalogue.DAILY_SETTINGS, "train": catalogue.TRAIN_SETTINGS}


def job_settings(job: str) -> type:
    """The settings dataclass a job module declares (the one its main parses)."""
    module = importlib.import_module(f"jobs.{job}")
    found = [value for value in vars(module).values()
             if isinstance(value, type) and dataclasses.is_dataclass(value)
             and value.__module__ == module.__name__ and value.__name__.endswith("Settings")]
    assert len(found) == 1, f"jobs/{job}.py should declare one settings class: {found}"
    return found[0]


def fed_flags() -> list[tuple[str, str, str, object]]:
    """(catalogue, setting, job, flag) of every flag the DAGs pass from a setting."""
    return [(name, setting.name, job, flag) for name, settings in CATALOGUES.items()
            for setting in settings for job, flag in setting.flags.items()]


def as_dag_value(job_default: object) -> str:
    """A job's default as the catalogue writes it (booleans are the words of a switch)."""
    if isinstance(job_default, bool):
        return "true" if job_default else "false"
    return str(job_default)


@pytest.mark.parametrize(("dag", "name", "job", "flag"), fed_flags())
def test_each_fed_flag_is_the_jobs_and_has_the_jobs_default(dag, name, job, flag):
    settings_type = job_settings(job)
    assert flag in flag_names(settings_type), f"{dag} DAG: {name} feeds {job} {flag}"
    setting = next(item for item in CATALOGUES[dag] if item.name == name)
    if setting.default not in (None, ""):
        defaults = flag_defaults(settings_type)
        assert flag in defaults, f"{name} has a default in the catalogue, {job} {flag} none"
        assert as_dag_value(defaults[flag]) == str(setting.default), (
            f"{name}: catalogue default {setting.default!r}, {job} {flag} {defaults[flag]!r}")


def test_every_job_gets_the_flags_it_requires():
    """A flag the job requires is fed by a setting of its DAG or given by the DAG itself
    (--date, and the paths the train DAG derives from models_root)."""
    given_by_the_dags = {"--date", "--output", "--model", "--report"}
    for dag, settings in CATALOGUES.items():
        for job in {job for setting in settings for job in setting.flags}:
            fed = {setting.flags[job] for setting in settings if job in setting.flags}
            assert required_flags(job_settings(job)) - fed - given_by_the_dags == set(), (
                dag, job)
