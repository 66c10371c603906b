"""What every spark-submit entry point shares: the one main, logging, one-line failures,
the summary.

A job's `main(argv)` is `job_main(name, SettingsClass, run, argv)`: flags -> the settings
dataclass (job/settings.py) -> `run(spark, settings, summary)`. Bad input raises
`JobInputError`: the job exits 2 with a one-line reason on stderr (and nothing is written).
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from notellm2_udf.errors import JobInputError
from notellm2_udf.log_setup import PROJECT_LOGGER, configure_logging
from notellm2_udf.settings.declared import parse_settings
from notellm2_udf.spark.session import SparkSettings, build_spark_session

log = logging.getLogger(PROJECT_LOGGER)
S = TypeVar("S")


@dataclass
class JobSummary:
    """Counters and facts a job reports when it ends, in insertion order."""

    name: str
    started: float = field(default_factory=time.monotonic)
    facts: dict[str, object] = field(default_factory=dict)

    def add(self, key: str, value: object) -> None:
        self.facts[key] = value

    @property
    def elapsed_s(self) -> float:
        return time.monotonic() - self.started

    def line(self) -> str:
        parts = [f"{key}={value}" for key, value in self.facts.items()]
        return f"{self.name} done in {self.elapsed_s:.1f}s: " + ", ".join(parts)


def run_job(name: str, body: Callable[[JobSummary], None]) -> int:
    """Run `body`, log its summary; exit code 0, or 2 with a one-line reason on bad input."""
    configure_logging()
    summary = JobSummary(name)
    try:
        body(summary)
    except JobInputError as err:
        print(f"{name}: {err}", file=sys.stderr)
        return 2
    log.info(summary.line())
    print(summary.line())
    return 0


def job_main(name: str, settings_type: type[S], run: Callable[[Any, S, JobSummary], Any],
             argv: Sequence[str] | None, description: str | None = None) -> int:
    """The main of every job: parse the flags into `settings_type`, start the session
    (named after the job and its day), run; the exit code as `run_job`."""
    first_line = next(iter((description or "").strip().splitlines()), None)
    settings = parse_settings(settings_type, argv, first_line)

    def body(summary: JobSummary) -> None:
        day = getattr(settings, "date", None)
        spark = build_spark_session(SparkSettings(app_name=f"{name} {day}" if day else name))
        run(spark, settings, summary)

    return run_job(name, body)
