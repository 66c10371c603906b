"""The settings of the notellm2 DAGs, declared once: what each one is, its check, its
default, and which flag of which job it feeds.

A run's value of a setting comes from the run's params (trigger conf), else the Airflow
Variable `notellm2_<name>`, else the default here (notellm2_resolve.py); what code and jars
run (`spark_*`) comes only from Variables. Each setting names the job flags it feeds
(`flags`: job script -> flag), and the DAG files build every task's arguments from that
(notellm2_operators.job_arguments). The jobs declare the same flags and their defaults in
their settings dataclasses: tests/airflow/test_catalogue.py checks that both agree.

Pure Python: DAG files import it at parse time, the job venv's tests without Airflow.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from notellm2_checks import (
    SettingError,
    check_optional_path,
    check_path,
    int_between,
    one_of,
    optional,
    positive_int,
    true_false,
    unit_float,
)

VARIABLE_PREFIX = "notellm2_"
EMBED_JOBS = ("embed_notes", "embed_window")


@dataclass(frozen=True)
class Setting:
    """One run setting. `default=None` means required (a param or Variable must give it).

    flags: the job flags it feeds, by job script name (without .py). How the value is
    passed follows from the setting: `true_false` ones are switches (the flag or nothing),
    ones whose default is "" are left out when empty (the job's own default applies),
    others are `--flag value`.
    """

    name: str
    check: Callable[[Any], Any]
    description: str
    default: Any = None
    # False: a Variable (or the default) only; a run's conf giving it is refused.
    run_conf: bool = True
    flags: Mapping[str, str] = field(default_factory=dict)

    @property
    def variable(self) -> str:
        return VARIABLE_PREFIX + self.name

    @property
    def form(self) -> str:
        """"switch", "optional" (left out when empty) or "value"."""
        if self.check is true_false:
            return "switch"
        return "optional" if self.default == "" else "value"


def feeding(flag: str, *jobs: str) -> dict[str, str]:
    return {job: flag for job in jobs}


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
    Setting("notes", check_path, "notes Delta table location (input)",
            flags=feeding("--notes", *EMBED_JOBS, "build_index", "validate_related")),
    Setting("embeddings", check_path, "note_embeddings Delta table location",
            flags=feeding("--embeddings", *EMBED_JOBS, "build_index", "related_notes",
                          "validate_related", "publish")),
    Setting("errors", check_path, "embedding_errors Delta table location",
            flags=feeding("--errors", *EMBED_JOBS, "build_index", "validate_related",
                          "publish")),
    Setting("related", check_path, "related_notes Delta table location",
            flags=feeding("--related", "embed_notes", "related_notes", "validate_related",
                          "publish")),
    Setting("index_root", check_path, "directory of the FAISS indexes (build_index keeps "
            "a day's in <index_root>/dt=<day>), visible to driver and executors",
            flags=feeding("--index-dir", "build_index", "related_notes")),
    Setting("model", check_optional_path, "one fixed NoteLLM-2 checkpoint directory, "
            "readable by every executor (or models_root)", "",
            flags=feeding("--model", *EMBED_JOBS)),
    Setting("models_root", check_optional_path, "model registry (docs/OPERATIONS.md): runs "
            "embed with its serving version and roll a promoted one out (or model)", "",
            flags=feeding("--models-root", *EMBED_JOBS, "build_index", "publish")),
    Setting("rollout_max_days", optional(positive_int(3_650)), "days a run embeds per "
            "version at most (embed_window --max-days; empty: the whole window)", "",
            flags=feeding("--max-days", "embed_window")),
    Setting("keep_versions", optional(positive_int(1_000)), "after a switch, keep the "
            "checkpoints of the serving and N-1 previous versions (empty: keep all)", "",
            flags=feeding("--keep-versions", "publish")),
    Setting("completeness", one_of("closed", "rows"), "when a notes day is complete: "
            "'closed' = the table property notellm2.closed_through reached it (producers "
            "appending in many commits); 'rows' = the day has rows (one-commit producers)",
            "closed"),
    Setting("allow_incomplete_window", true_false, "index a window with days missing "
            "embeddings (build_index --allow-incomplete-window)", "false",
            flags=feeding("--allow-incomplete-window", "build_index")),
    Setting("top_k", positive_int(10_000), "related notes per note", 100,
            flags=feeding("--top-k", "related_notes", "validate_related")),
    Setting("window_days", positive_int(3_650), "days of notes a day's index holds", 30,
            flags=feeding("--window-days", "embed_window", "build_index",
                          "validate_related")),
    Setting("index_type", one_of("auto", "flat", "ivf", "ivfpq", "hnsw"), "FAISS index kind",
            "auto", flags=feeding("--index-type", "build_index")),
    Setting("num_shards", optional(positive_int(4_096)), "index shards (empty: the job "
            "chooses)", "", flags=feeding("--num-shards", "build_index")),
    Setting("queries", optional(one_of("all", "new")), "which notes get related notes: "
            "every note of the window, or the day's new notes (empty: the job's default)", "",
            flags=feeding("--queries", "related_notes")),
    Setting("batch_size", optional(positive_int(100_000)), "notes per Arrow batch of the "
            "encoder (empty: the job's default)", "",
            flags=feeding("--batch-size", *EMBED_JOBS)),
    Setting("compile", true_false, "torch.compile the model on each embedding worker "
            "(--compile; worth it on GPUs)", "false", flags=feeding("--compile", *EMBED_JOBS)),
    Setting("recall_sample", positive_int(100_000), "query notes checked against exact "
            "search (the recall related_notes reports and validate_related gates on)", 200,
            flags=feeding("--recall-sample", "related_notes", "validate_related")),
    Setting("min_recall", unit_float, "validate fails below this sampled recall@top_k", 0.9,
            flags=feeding("--min-recall", "validate_related")),
    *SPARK_SETTINGS,
)

TRAIN_SETTINGS = (
    Setting("pairs", check_path, "related_pairs Delta table location (behaviour pairs)",
            flags=feeding("--pairs", "train", "evaluate")),
    Setting("notes", check_path, "notes Delta table location",
            flags=feeding("--notes", "train", "evaluate")),
    Setting("models_root", check_path, "model registry directory: base/, candidates/<day>/, "
            "reports/<day>/, and the `current` link the daily DAG reads"),
    # Resolved to <models_root>/base when empty (the train DAG's resolve task), so the job
    # always gets a value.
    Setting("init_model", check_optional_path,
            "checkpoint training starts from (default <models_root>/base)", "",
            flags=feeding("--init-model", "train")),
    Setting("epochs", positive_int(1_000), "training epochs", 1,
            flags=feeding("--epochs", "train")),
    Setting("global_batch_pairs", positive_int(100_000), "pairs per optimizer step over all "
            "processes (the paper's 128; a multiple of num_processes)", 128,
            flags=feeding("--global-batch-pairs", "train")),
    Setting("sub_batch_pairs", int_between(0, 100_000), "GradCache: pairs per forward pass "
            "within a process's share (0: the whole share in one pass)", 16,
            flags=feeding("--sub-batch-pairs", "train")),
    Setting("validation_days", int_between(0, 3_650), "last days before the held-out day "
            "taken out of training as validation pairs (0: none, the last weights are the "
            "model)", 0, flags=feeding("--validation-days", "train")),
    Setting("eval_every", positive_int(10_000_000), "steps between validations; the lowest "
            "validation loss is the candidate", 1750, flags=feeding("--eval-every", "train")),
    Setting("num_processes", positive_int(1_024), "training processes (TorchDistributor)", 1,
            flags=feeding("--num-processes", "train")),
    Setting("use_gpu", true_false, "train on GPUs (--use-gpu)", "false",
            flags=feeding("--use-gpu", "train")),
    *SPARK_SETTINGS,
)


def check_batch_split(resolved: Mapping[str, Any]) -> None:
    """The train DAG's global batch must split evenly over its processes (as train.py asks)."""
    pairs, processes = resolved["global_batch_pairs"], resolved["num_processes"]
    if pairs % processes:
        raise SettingError(f"global_batch_pairs: {pairs} is not a multiple of num_processes "
                           f"{processes}")
