"""The settings several jobs take, each declared once (a dataclass field factory), so that
a flag means one thing everywhere (`--date`, `--top-k`, `--run-id`, `--model`, ...)."""

from __future__ import annotations

from notellm2_udf.settings.declared import option, required
from notellm2_udf.settings.values import (
    day_arg,
    manual_run_id,
    non_negative_int_arg,
    positive_int_arg,
    run_id_arg,
)

DEFAULT_TOP_K = 100
DEFAULT_WINDOW_DAYS = 30
DEFAULT_RECALL_SAMPLE = 200


def day_setting(help: str = "the dt partition, yyyy-MM-dd"):
    return required(help=help, parse=day_arg, metavar="yyyy-MM-dd")


def table_setting(table: str):
    return required(help=f"{table} Delta table location")


def top_k_setting():
    return option(DEFAULT_TOP_K, help="related notes per note", parse=positive_int_arg)


def window_days_setting(help: str = "days of notes a day's index holds"):
    return option(DEFAULT_WINDOW_DAYS, help=help, parse=positive_int_arg)


def recall_sample_setting(help: str, *, parse=non_negative_int_arg, aliases: tuple = ()):
    return option(DEFAULT_RECALL_SAMPLE, help=help, parse=parse, aliases=aliases)


def run_id_setting():
    return option(default_factory=manual_run_id, parse=run_id_arg,
                  help="stamped on every row written (default: manual-<time>-<random>)")


def model_dir_setting():
    """--model, exclusive with --models-root: name the group in REQUIRED_GROUPS."""
    return option(None, exclusive="model",
                  help="NoteLLM-2 checkpoint directory (a link is resolved once, on the driver)")


def models_root_setting(help: str = "model registry: its serving version "
                                    "(docs/OPERATIONS.md)"):
    return option(None, exclusive="model", help=help)
