"""Several jobs in one spark-submit: one JVM and one SparkSession for all of them.

    spark-submit scripts/run_jobs.py embed_notes --date D ... --- build_index --date D ...

Each job is its name (a module of jobs/) and its flags; `---` separates them. They run in
order, each through its own `main(argv)` exactly as its own spark-submit would run it,
sharing the session (its JVM, warm caches and Python workers): the demo's days then cost
seconds each rather than a JVM start-up per job. The first job that fails ends the run with
its exit code (2 with a one-line reason for bad input, as every job). Production runs each
job as its own spark-submit (the DAG's tasks), so that each retries alone.
"""

from __future__ import annotations

import importlib
import sys
import time
from collections.abc import Sequence
from pathlib import Path

SEPARATOR = "---"
JOBS = sorted(path.stem for path in (Path(__file__).resolve().parents[1] / "jobs").glob("*.py")
              if not path.stem.startswith("_"))


def job_argvs(argv: Sequence[str]) -> list[list[str]]:
    """[[job, flag, ...], ...] from the command line, refusing an unknown or empty job."""
    groups: list[list[str]] = [[]]
    for arg in argv:
        if arg == SEPARATOR:
            groups.append([])
        else:
            groups[-1].append(arg)
    for group in groups:
        if not group or group[0] not in JOBS:
            raise ValueError(f"each part must start with a job among {JOBS}, got "
                             f"{group[:1] or 'nothing'} (parts are separated by {SEPARATOR})")
    return groups


def main(argv: Sequence[str] | None = None) -> int:
    try:
        groups = job_argvs(sys.argv[1:] if argv is None else argv)
    except ValueError as err:
        print(f"run_jobs: {err}", file=sys.stderr)
        return 2
    for number, (name, *flags) in enumerate(groups, 1):
        started = time.monotonic()
        code = importlib.import_module(f"jobs.{name}").main(flags)
        print(f"run_jobs: {number}/{len(groups)} {name} exited {code} after "
              f"{time.monotonic() - started:.1f} s", flush=True)
        if code:
            return code
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
