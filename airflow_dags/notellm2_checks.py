"""What a DAG setting may be: the checks that refuse a value before it reaches a job (a
real yyyy-MM-dd day, plain path characters, numbers in range, one of a few words).

Pure Python: DAG files import it at parse time, the job venv's tests without Airflow.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import date
from typing import Any

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


# A setting that is a job's switch: the flag, or nothing.
true_false = one_of("true", "false")
