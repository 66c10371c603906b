"""The argparse types of settings' flags: what a day, a count, a list or a run id may be."""

from __future__ import annotations

import argparse
import re
import uuid
from collections.abc import Callable
from datetime import UTC, datetime

from notellm2_udf.days import validate_day

_RUN_ID = re.compile(r"[A-Za-z0-9_.:+\-]{1,250}")


def day_arg(text: str) -> str:
    """argparse type of --date flags: a real yyyy-MM-dd date, nothing else."""
    try:
        return validate_day(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def positive_int_arg(text: str) -> int:
    """argparse type of counts and sizes: an integer >= 1."""
    value = _int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def non_negative_int_arg(text: str) -> int:
    """argparse type of counts where 0 means "none" or "off": an integer >= 0."""
    value = _int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {value}")
    return value


def _int(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be an integer, got {text!r}") from None


def comma_list(cast: Callable[[str], object]) -> Callable[[str], tuple]:
    """argparse type of `a,b,c` lists whose items are parsed by `cast`."""
    def parse(text: str) -> tuple:
        try:
            return tuple(cast(item) for item in text.split(",") if item)
        except (ValueError, argparse.ArgumentTypeError) as err:
            raise argparse.ArgumentTypeError(str(err)) from None
    return parse


def run_id_arg(text: str) -> str:
    """argparse type of --run-id: an Airflow run id or similar, nothing a SQL string or a
    path could trip over."""
    if not _RUN_ID.fullmatch(text):
        raise argparse.ArgumentTypeError(f"run id must match {_RUN_ID.pattern}, got {text!r}")
    return text


def manual_run_id() -> str:
    """The run id of a run that was given none (--run-id): not Airflow's, and unique."""
    return f"manual-{datetime.now(UTC):%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:6]}"
