"""Settings of the notellm2 DAGs: declared once, resolved and validated before any job runs.

A run's settings come, for each name, from the run's params (trigger conf), else the Airflow
Variable `notellm2_<name>`, else the declared default; what code and jars run
(`spark_packages`, `spark_jars`, `spark_py_files`, `spark_properties_file`) comes only from
Variables: whoever may trigger a run must not choose what it executes. `resolve_settings`
refuses a day that is not a real yyyy-MM-dd date, a path or URI holding anything but plain
path characters (shell metacharacters, spaces, a leading `-` that a job would read as a
flag, a `..` segment) and numbers out of range, so a bad value fails the first task and
nothing is written.

Deployment facts that Airflow needs at parse time (operator arguments that are not
templated) come from the environment of the scheduler and workers:
    NOTELLM2_SPARK_SUBMIT  spark-submit to run (default: <repo>/.venv/bin/spark-submit)
    NOTELLM2_JOB_PYTHON    Python of the jobs' driver and workers (default: <repo>/.venv/bin/python)
    NOTELLM2_JOBS_DIR      directory holding the jobs' .py files (default: <repo>/jobs)

Pure Python on purpose: the DAG files import it at parse time and the job venv's tests import
it without Airflow.
"""

from __future__ import annotations

import functools
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
SPARK_SUBMIT = os.environ.get("NOTELLM2_SPARK_SUBMIT", str(REPO_ROOT / ".venv/bin/spark-submit"))
JOB_PYTHON = os.environ.get("NOTELLM2_JOB_PYTHON", str(REPO_ROOT / ".venv/bin/python"))
JOBS_DIR = os.environ.get("NOTELLM2_JOBS_DIR", str(REPO_ROOT / "jobs"))

VARIABLE_PREFIX = "notellm2_"
RESOLVE_TASK_ID = "resolve_settings"

_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")
# Letters, digits and the punctuation of paths and URIs; nothing a shell or argparse reads.
_PLAIN_PATH = re.compile(r"[A-Za-z0-9_./:@+=,%~-]+")


class SettingError(ValueError):
    """A setting that must not reach a job; the message names the setting and the value."""


def check_day(value: Any) -> str:
    if not isinstance(value, str) or not _DAY.fullmatch(value):
        raise SettingError(f"day must be yyyy-MM-dd, got {value!r}")
    try:
        date.fromisoformat(value)
    except ValueError:
        raise SettingError(f"day must be a real date, got {value!r}") from None
    return value


def check_path(value: Any) -> str:
    """A path or URI (file:, s3a:, hdfs:, abfss:) made of plain path characters only."""
    if not isinstance(value, str) or not _PLAIN_PATH.fullmatch(value):
        raise SettingError(f"must be a path or URI of plain characters "
                           f"[A-Za-z0-9_./:@+=,%~-], got {value!r}")
    if value.startswith("-"):
        raise SettingError(f"must not start with '-', got {value!r}")
    if ".." in value.split("/"):
        raise SettingError(f"must not climb out of a directory with '..', got {value!r}")
    return value


def check_optional_path(value: Any) -> str:
    """Empty means "not given" (spark-submit then gets no such flag)."""
    return "" if value in (None, "") else check_path(value)


def positive_int(maximum: int) -> Callable[[Any], int]:
    return int_between(1, maximum)


def int_between(minimum: int, maximum: int) -> Callable[[Any], int]:
    def check(value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, (int, str)):
            raise SettingError(f"must be an integer, got {value!r}")
        try:
            number = int(value)
        except ValueError:
            raise SettingError(f"must be an integer, got {value!r}") from None
        if not minimum <= number <= maximum:
            raise SettingError(f"must be in [{minimum}, {maximum}], got {number}")
        return number
    return check


def unit_float(value: Any) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise SettingError(f"must be a number, got {value!r}") from None
    if not 0.0 <= number <= 1.0:
        raise SettingError(f"must be in [0, 1], got {number}")
    return number


def optional(check: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """Empty means "not given": the job's own default applies (see `optional_flag`)."""
    return lambda value: "" if value in (None, "") else check(value)


def one_of(*choices: str) -> Callable[[Any], str]:
    def check(value: Any) -> str:
        if value not in choices:
            raise SettingError(f"must be one of {list(choices)}, got {value!r}")
        return value
    return check


@dataclass(frozen=True)
class Setting:
    """One run setting. `default=None` means required (a param or Variable must give it)."""

    name: str
    check: Callable[[Any], Any]
    description: str
    default: Any = None
    # False: a Variable (or the default) only; a run's conf giving it is refused.
    run_conf: bool = True

    @property
    def variable(self) -> str:
        return VARIABLE_PREFIX + self.name


SPARK_SETTINGS = (
    Setting("spark_packages", check_optional_path,
            "spark-submit --packages, e.g. io.delta:delta-spark_2.13:4.0.1,"
            "io.delta:delta-storage:4.0.1 on a cluster; empty locally (spark-defaults.conf "
            "has the jars)", "", run_conf=False),
    Setting("spark_jars", check_optional_path, "spark-submit --jars (comma-separated)", "",
            run_conf=False),
    Setting("spark_py_files", check_optional_path,
            "spark-submit --py-files: a zip/wheel of notellm2_udf + schemas for executors "
            "that lack the package", "", run_conf=False),
    Setting("spark_properties_file", check_optional_path,
            "spark-submit --properties-file: cluster settings (GPUs, memory, metastore)", "",
            run_conf=False),
)

DAILY_SETTINGS = (
    Setting("notes", check_path, "notes Delta table location (input)"),
    Setting("embeddings", check_path, "note_embeddings Delta table location"),
    Setting("errors", check_path, "embedding_errors Delta table location"),
    Setting("related", check_path, "related_notes Delta table location"),
    Setting("index_root", check_path, "directory of the FAISS indexes (build_index keeps "
            "a day's in <index_root>/dt=<day>), visible to driver and executors"),
    Setting("model", check_optional_path, "one fixed NoteLLM-2 checkpoint directory, "
            "readable by every executor (or models_root)", ""),
    Setting("models_root", check_optional_path, "model registry (docs/OPERATIONS.md): runs "
            "embed with its serving version and roll a promoted one out (or model)", ""),
    Setting("rollout_max_days", optional(positive_int(3_650)), "days a run embeds per "
            "version at most (embed_window --max-days; empty: the whole window)", ""),
    Setting("keep_versions", optional(positive_int(1_000)), "after a switch, keep the "
            "checkpoints of the serving and N-1 previous versions (empty: keep all)", ""),
    Setting("completeness", one_of("closed", "rows"), "when a notes day is complete: "
            "'closed' = the table property notellm2.closed_through reached it (producers "
            "appending in many commits); 'rows' = the day has rows (one-commit producers)",
            "closed"),
    Setting("allow_incomplete_window", one_of("true", "false"), "index a window with days "
            "missing embeddings (build_index --allow-incomplete-window)", "false"),
    Setting("top_k", positive_int(10_000), "related notes per note", 100),
    Setting("window_days", positive_int(3_650), "days of notes a day's index holds", 30),
    Setting("index_type", one_of("auto", "flat", "ivf", "ivfpq", "hnsw"), "FAISS index kind",
            "auto"),
    Setting("num_shards", optional(positive_int(4_096)), "index shards (empty: the job "
            "chooses)", ""),
    Setting("queries", optional(one_of("all", "new")), "which notes get related notes: "
            "every note of the window, or the day's new notes (empty: the job's default)", ""),
    Setting("batch_size", optional(positive_int(100_000)), "notes per Arrow batch of the "
            "encoder (empty: the job's default)", ""),
    Setting("compile", one_of("true", "false"), "torch.compile the model on each embedding "
            "worker (--compile; worth it on GPUs)", "false"),
    Setting("recall_sample", positive_int(100_000), "query notes checked against exact "
            "search by validate", 200),
    Setting("min_recall", unit_float, "validate fails below this sampled recall@top_k", 0.9),
    *SPARK_SETTINGS,
)

TRAIN_SETTINGS = (
    Setting("pairs", check_path, "related_pairs Delta table location (behaviour pairs)"),
    Setting("notes", check_path, "notes Delta table location"),
    Setting("models_root", check_path, "model registry directory: base/, candidates/<day>/, "
            "reports/<day>/, and the `current` link the daily DAG reads"),
    Setting("init_model", check_optional_path,
            "checkpoint training starts from (default <models_root>/base)", ""),
    Setting("epochs", positive_int(1_000), "training epochs", 1),
    Setting("global_batch_pairs", positive_int(100_000), "pairs per optimizer step over all "
            "processes (the paper's 128; a multiple of num_processes)", 128),
    Setting("sub_batch_pairs", int_between(0, 100_000), "GradCache: pairs per forward pass "
            "within a process's share (0: the whole share in one pass)", 16),
    Setting("validation_days", int_between(0, 3_650), "last days before the held-out day "
            "taken out of training as validation pairs (0: none, the last weights are the "
            "model)", 0),
    Setting("eval_every", positive_int(10_000_000), "steps between validations; the lowest "
            "validation loss is the candidate", 1750),
    Setting("num_processes", positive_int(1_024), "training processes (TorchDistributor)", 1),
    Setting("use_gpu", one_of("true", "false"), "train on GPUs (--use-gpu)", "false"),
    *SPARK_SETTINGS,
)


def check_batch_split(resolved: Mapping[str, Any]) -> None:
    """The train DAG's global batch must split evenly over its processes (as train.py asks)."""
    pairs, processes = resolved["global_batch_pairs"], resolved["num_processes"]
    if pairs % processes:
        raise SettingError(f"global_batch_pairs: {pairs} is not a multiple of num_processes "
                           f"{processes}")


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


def _resolved(name: str) -> str:
    """Jinja expression of a resolved setting: the resolve task's XCom."""
    return f"ti.xcom_pull(task_ids='{RESOLVE_TASK_ID}')['{name}']"


def setting(name: str) -> str:
    """Template of a resolved setting, for templated fields."""
    return "{{ " + _resolved(name) + " }}"


def optional_flag(flag: str, name: str) -> str:
    """One argument `--flag=value`, or nothing when the setting is empty."""
    value = _resolved(name)
    return "{{ ('" + flag + "=' ~ " + value + ") if " + value + " != '' else '' }}"


def switch(flag: str, name: str) -> str:
    """The argument `flag` when the setting is "true", else nothing."""
    return "{{ '" + flag + "' if " + _resolved(name) + " == 'true' else '' }}"


def spark_job(task_id: str, script: str, args: list[str], **kwargs: Any):
    """A SparkSubmitOperator on the `spark_default` connection running jobs/<script>.

    Everything variable is templated from the resolved settings, so the Rendered Template
    view shows the exact command; arguments that render empty (`optional_flag`, `switch`)
    are left out. Imported lazily: this module stays Airflow-free.
    """
    return _spark_job_operator()(
        task_id=task_id,
        conn_id="spark_default",
        spark_binary=SPARK_SUBMIT,
        application=f"{JOBS_DIR}/{script}",
        application_args=args,
        name=f"notellm2-{task_id}-{setting('day')}",
        packages=setting("spark_packages"),
        jars=setting("spark_jars"),
        py_files=setting("spark_py_files"),
        properties_file=setting("spark_properties_file"),
        # Without these spark-submit may find the Airflow venv's jar-less pyspark-client.
        env_vars={"PYSPARK_PYTHON": JOB_PYTHON, "PYSPARK_DRIVER_PYTHON": JOB_PYTHON},
        **kwargs,
    )


@functools.cache
def _spark_job_operator():
    from airflow.providers.apache.spark.operators.spark_submit import SparkSubmitOperator

    class SparkJobOperator(SparkSubmitOperator):
        """SparkSubmitOperator that drops the arguments that rendered empty."""

        def execute(self, context):
            self.application_args = [arg for arg in self.application_args or [] if arg != ""]
            return super().execute(context)

    return SparkJobOperator


def params_of(settings: tuple[Setting, ...]) -> dict[str, Any]:
    """Airflow Params (all nullable: null means "Variable, else default")."""
    from airflow.sdk import Param

    params = {"day": Param(None, type=["null", "string"],
                           description="day to process, yyyy-MM-dd (default: the run's day)")}
    for item in (item for item in settings if item.run_conf):
        shown = "required" if item.default is None else f"default {item.default!r}"
        params[item.name] = Param(
            None, type=["null", "string", "integer", "number"],
            description=f"{item.description} ({shown}; else Variable {item.variable})")
    return params
