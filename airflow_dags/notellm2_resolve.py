"""A run's settings, resolved before any job runs: param (trigger conf) > Variable
`notellm2_<name>` > the catalogue's default, every value checked, and the day the run
processes. `resolve_settings` refuses a day that is not a real yyyy-MM-dd date, a path or URI
holding anything but plain path characters (shell metacharacters, spaces, a leading `-`
that a job would read as a flag, a `..` segment) and numbers out of range, so a bad value
fails the first task and nothing is written.

Pure Python but `resolve_run` (which reads Airflow Variables inside a task).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from notellm2_catalogue import Setting
from notellm2_checks import SettingError, check_day


def resolve_settings(settings: tuple[Setting, ...], params: Mapping[str, Any],
                     get_variable: Callable[[str], Any]) -> dict[str, Any]:
    """param (if not null/empty) > Variable notellm2_<name> > default; every value checked.

    Raises SettingError listing every bad or missing setting at once.
    """
    resolved, problems = {}, []
    for setting in settings:
        value = params.get(setting.name)
        if value not in (None, "") and not setting.run_conf:
            problems.append(f"{setting.name}: a run's conf cannot set it (it chooses what "
                            f"code runs); set the Variable {setting.variable}")
            continue
        if value in (None, ""):
            value = get_variable(setting.variable)
        if value in (None, ""):
            value = setting.default
        if value is None:
            problems.append(f"{setting.name}: missing (give the param or the Variable "
                            f"{setting.variable})")
            continue
        try:
            resolved[setting.name] = setting.check(value)
        except SettingError as err:
            problems.append(f"{setting.name}: {err}")
    if "models_root" in resolved and "model" in resolved and (
            bool(resolved["model"]) == bool(resolved["models_root"])):
        problems.append("model, models_root: give exactly one (models_root: the registry's "
                        "serving version, with rollouts; model: one fixed checkpoint)")
    if problems:
        raise SettingError("; ".join(problems))
    return resolved


def resolve_day(params: Mapping[str, Any], context: Mapping[str, Any]) -> str:
    """The day a run processes: params.day if given, else the run's data interval start.

    With the DAGs' CronDataIntervalTimetable a scheduled run covers [D, D+1) and fires at its
    end, so `ds` is D: the run that fires at 00:00 on 2026-11-26 processes dt=2026-11-25.
    """
    day = params.get("day")
    if day in (None, ""):
        day = context.get("ds")
    if day in (None, ""):
        start = context.get("data_interval_start")
        day = start.strftime("%Y-%m-%d") if start is not None else None
    if day is None:
        raise SettingError("day: the run has no logical date; trigger it with one or "
                           "give params.day")
    return check_day(day)


def resolve_run(settings: tuple[Setting, ...], context: Mapping[str, Any]) -> dict[str, Any]:
    """The resolve task of a DAG: its settings and day, or the run fails without retries."""
    from airflow.sdk import Variable
    from airflow.sdk.exceptions import AirflowFailException

    params, problems = context["params"], []
    try:
        resolved = resolve_settings(settings, params, lambda key: Variable.get(key, default=None))
    except SettingError as err:
        problems.append(str(err))
    try:
        day = resolve_day(params, context)
    except SettingError as err:
        problems.append(str(err))
    if problems:
        raise AirflowFailException("refusing to run: " + "; ".join(problems))
    return {**resolved, "day": day}
