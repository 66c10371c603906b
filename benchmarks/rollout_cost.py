"""The cost of a rollout: re-embedding a window of sample notes in one embed_window job vs one
embed_notes spark-submit per day (what 30 daily runs, or a 30-day backfill, would pay).

    python benchmarks/rollout_cost.py [--days 30] [--notes-per-day 50] [--daily-runs 30]

Writes `--days` days of sample notes, a tiny random checkpoint, then times, through the job
venv's spark-submit with a private metastore (as the DAG runs them): one `embed_window`
over the whole window, and `--daily-runs` separate `embed_notes` runs of single days (each
into a fresh table, so none finds its day done). Fewer daily runs than days are
extrapolated: median seconds per run x days (printed as such). Prints a Markdown row and
writes JSON beside the work directory.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
START = date(2026, 10, 1)


def submit(env: dict, job: str, *args: str) -> float:
    started = time.monotonic()
    subprocess.run([str(BIN / "spark-submit"), "--master", "local[2]",
                    "--conf", "spark.ui.enabled=false", str(REPO / "jobs" / job), *args],
                   env=env, check=True, capture_output=True, text=True, cwd=REPO)
    return time.monotonic() - started


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--notes-per-day", type=int, default=50)
    parser.add_argument("--daily-runs", type=int, default=30)
    parser.add_argument("--workdir", type=Path, default=None)
    args = parser.parse_args(argv)
    work = args.workdir or Path(tempfile.mkdtemp(prefix="rollout-bench-"))
    sys.path.insert(0, str(REPO))
    from tests.support.processes import private_install_env

    env = {**private_install_env(work / "spark"), "PYTHONPATH": str(REPO)}
    subprocess.run([str(BIN / "notellm2"), "sample-data", "--out", str(work / "data"),
                    "--start-date", START.isoformat(), "--days", str(args.days),
                    "--notes-per-day", str(args.notes_per_day), "--no-register"],
                   env=env, check=True, capture_output=True)
    subprocess.run([str(BIN / "notellm2"), "init-model", "--tiny-random", "--out",
                    str(work / "model")], env=env, check=True, capture_output=True)
    last = (START + timedelta(days=args.days - 1)).isoformat()
    common = ["--notes", str(work / "data" / "notes"), "--model", str(work / "model")]

    window_s = submit(env, "embed_window.py", "--date", last, "--window-days", str(args.days),
                      *common, "--embeddings", str(work / "window" / "emb"),
                      "--errors", str(work / "window" / "err"))
    print(f"embed_window over {args.days} days: {window_s:.1f} s", file=sys.stderr, flush=True)
    daily = []
    for i in range(args.daily_runs):
        day = (START + timedelta(days=i)).isoformat()
        daily.append(submit(env, "embed_notes.py", "--date", day, *common,
                            "--embeddings", str(work / "daily" / "emb"),
                            "--errors", str(work / "daily" / "err")))
        print(f"embed_notes {day}: {daily[-1]:.1f} s ({i + 1}/{args.daily_runs})",
              file=sys.stderr, flush=True)
    daily_total = statistics.median(daily) * args.days
    result = {
        "date": date.today().isoformat(), "machine": f"{platform.node()} {os.cpu_count()} cores",
        "days": args.days, "notes_per_day": args.notes_per_day, "window_job_s": window_s,
        "daily_runs_measured": len(daily), "daily_median_s": statistics.median(daily),
        "daily_total_s": daily_total, "measured_daily_total_s": sum(daily),
        "ratio": daily_total / window_s,
    }
    print(f"| {args.days} days x {args.notes_per_day} notes | one embed_window: "
          f"{window_s:.0f} s | {len(daily)} embed_notes runs, median {result['daily_median_s']:.1f}"
          f" s -> {args.days} runs {daily_total:.0f} s | {result['ratio']:.1f}x |")
    (work / "rollout_cost.json").write_text(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
