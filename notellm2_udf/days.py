"""Days (`dt` partitions, yyyy-MM-dd) and the windows of days that end at one of them."""

from __future__ import annotations

import re
from datetime import date, timedelta

_DATE_PATTERN = re.compile(r"\d{4}-\d{2}-\d{2}")


def validate_day(day: str) -> str:
    """Return `day` if it is a real yyyy-MM-dd date, else raise ValueError.

    Days end up inside `replaceWhere` predicates, so nothing else may get through.
    """
    if not isinstance(day, str) or not _DATE_PATTERN.fullmatch(day):
        raise ValueError(f"date must be yyyy-MM-dd, got {day!r}")
    date.fromisoformat(day)
    return day


def window_bounds(*, day: str, window_days: int) -> tuple[str, str]:
    """First and last dt of the `window_days`-day window ending at `day` (both inclusive)."""
    if window_days < 1:
        raise ValueError(f"window_days must be >= 1, got {window_days}")
    last = date.fromisoformat(validate_day(day))
    return (last - timedelta(days=window_days - 1)).isoformat(), last.isoformat()
