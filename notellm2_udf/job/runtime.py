"""What every spark-submit entry point shares: logging, one-line failures, the summary.

A job's `main(argv)` parses its flags, then calls `run_job(name, body)`. Bad input raises
`JobInputError`: the job exits 2 with a one-line reason on stderr (and nothing is written).
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from notellm2_udf.errors import JobInputError
from notellm2_udf.log_setup import PROJECT_LOGGER, configure_logging

log = logging.getLogger(PROJECT_LOGGER)


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
