"""What a daily job costs on a small day above a bare spark-submit, and where it goes.

    python benchmarks/job_overhead.py [--notes-per-day 200] [--repeats 3] \
        [--variants '{"before": {"tree": "/path/a"}, "after": {"tree": "/path/b"}}'] \
        [--jobs embed_notes,build_index,...] [--workdir DIR] [--out DIR]

Writes two days of sample notes (notellm2_udf/sample) and the demo's tiny random model,
starts a private Derby metastore server (so the shared one is left alone, and configured the
same way: a network server on loopback), runs the daily pipeline once for both days, then
measures the second day: each daily job as its own spark-submit (through
benchmarks/overhead_probe.py, which times its phases), and three references run the same way
with the same --conf and jars: an empty script, a script that only builds the jobs'
SparkSession, and the ladder of first-time costs (first Hive call, first Delta read, Python
workers, torch import, model load). `--references scale:ROWS --jobs ''` measures instead
the JVM-bound work of a big day (Delta write, window, join), for JVM options that help small
days and might slow big ones. Variants (a source tree, extra --conf, extra driver JVM
options) run back to back for every item, their order alternating between repeats, so that
the noise of a shared machine falls on all of them alike; the figures are medians.
Raw runs go to `<out>/job_overhead.jsonl`, the summary to `<out>/job_overhead.json` and the
tables (Markdown) to stdout and `<out>/job_overhead.md`.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from datetime import date
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
FIRST_DAY, DAY = "2026-11-24", "2026-11-25"
JOBS = ("embed_notes", "build_index", "related_notes", "validate_related", "publish")
REFERENCES = ("empty", "session", "ladder")
METASTORE_PORT = 1537
TOP_K = 20


def job_flags(work: Path, day: str) -> dict[str, list[str]]:
    """The demo's flags of each daily job (scripts/demo.sh)."""
    lake, notes = work / "lake", str(work / "notes")
    tables = {name: str(lake / name) for name in
              ("note_embeddings", "embedding_errors", "related_notes")}
    return {
        "embed_notes": ["--date", day, "--notes", notes, "--model", str(work / "models/current"),
                        "--embeddings", tables["note_embeddings"],
                        "--errors", tables["embedding_errors"]],
        "build_index": ["--date", day, "--embeddings", tables["note_embeddings"],
                        "--index-dir", str(work / "index")],
        "related_notes": ["--date", day, "--embeddings", tables["note_embeddings"],
                          "--index-dir", str(work / "index"),
                          "--related", tables["related_notes"], "--top-k", str(TOP_K)],
        "validate_related": ["--date", day, "--notes", notes,
                             "--embeddings", tables["note_embeddings"],
                             "--errors", tables["embedding_errors"],
                             "--related", tables["related_notes"], "--top-k", str(TOP_K)],
        "publish": ["--date", day, "--embeddings", tables["note_embeddings"],
                    "--errors", tables["embedding_errors"],
                    "--related", tables["related_notes"], "--run-id", "bench"],
    }


def base_conf(work: Path) -> dict[str, str]:
    """spark-defaults.conf's settings, pointed at the private metastore and warehouse."""
    lakehouse = work / "lakehouse"
    return {
        "spark.ui.showConsoleProgress": "false",
        "spark.hadoop.javax.jdo.option.ConnectionURL":
            f"jdbc:derby://127.0.0.1:{METASTORE_PORT}/metastore_db;create=true",
        "spark.sql.warehouse.dir": str(lakehouse / "warehouse"),
        "spark.driver.extraJavaOptions": f"-Dderby.stream.error.file={lakehouse / 'derby.log'}",
    }


class Variant:
    """A source tree, extra Spark settings and extra driver JVM options."""

    def __init__(self, name: str, spec: dict, work: Path):
        self.name = name
        self.tree = Path(spec.get("tree", REPO)).resolve()
        self.conf = base_conf(work) | spec.get("conf", {})
        if spec.get("java_options"):
            self.conf["spark.driver.extraJavaOptions"] += " " + spec["java_options"]

    def env(self) -> dict[str, str]:
        python = sys.executable
        return os.environ | {"PYTHONPATH": str(self.tree), "SPARK_LOCAL_IP": "127.0.0.1",
                             "PYSPARK_PYTHON": python, "PYSPARK_DRIVER_PYTHON": python}

    def submit(self, script: Path, args: list[str], phases: Path | None = None,
               timeout: float = 900) -> tuple[float, int, str]:
        command = [str(Path(sys.executable).parent / "spark-submit")]
        for key, value in self.conf.items():
            command += ["--conf", f"{key}={value}"]
        command += [str(script), *args]
        env = self.env()
        started = time.time()
        env["OVERHEAD_T0"] = repr(started)
        if phases is not None:
            env["OVERHEAD_PHASES"] = str(phases)
        done = subprocess.run(command, env=env, cwd=self.tree, capture_output=True, text=True,
                              timeout=timeout)
        return time.time() - started, done.returncode, done.stdout[-2000:] + done.stderr[-4000:]


def prepare(work: Path, notes_per_day: int, variant: Variant) -> None:
    """Sample notes, the tiny model, the metastore, and both days through the pipeline."""
    notellm2 = str(Path(sys.executable).parent / "notellm2")
    env = variant.env()
    subprocess.run([notellm2, "sample-data", "--out", str(work), "--start-date", FIRST_DAY,
                    "--days", "2", "--notes-per-day", str(notes_per_day)],
                   env=env, check=True, capture_output=True)
    subprocess.run([notellm2, "init-model", "--tiny-random", "--out", str(work / "models/base")],
                   env=env, check=True, capture_output=True)
    (work / "models/current").symlink_to("base")
    start_metastore(work, "start")
    run_jobs_args: list[str] = []
    for day in (FIRST_DAY, DAY):
        for name, flags in job_flags(work, day).items():
            run_jobs_args += (["---"] if run_jobs_args else []) + [name, *flags]
    seconds, code, tail = variant.submit(variant.tree / "scripts/run_jobs.py", run_jobs_args)
    if code:
        raise SystemExit(f"preparing the two days failed ({code}):\n{tail}")
    print(f"prepared {work} in {seconds:.0f} s", flush=True)


def start_metastore(work: Path, action: str) -> None:
    notellm2 = str(Path(sys.executable).parent / "notellm2")
    subprocess.run([notellm2, "metastore", action, "--lakehouse", str(work / "lakehouse"),
                    "--jars-dir", str(REPO / ".cache/derby"), "--port", str(METASTORE_PORT)],
                   check=action == "start", capture_output=True)


def item_command(item: str, work: Path, variant: Variant) -> tuple[Path, list[str]]:
    probe = REPO / "benchmarks/overhead_probe.py"
    if item == "empty":
        return work / "empty.py", []
    if item == "session":
        return probe, ["session"]
    if item == "ladder":
        return probe, ["ladder", str(work / "lake/note_embeddings"), str(work / "models/base")]
    if item.startswith("scale"):  # scale:ROWS
        return probe, ["scale", item.partition(":")[2] or "2000000", str(work / "scale_table")]
    return probe, ["job", item, *job_flags(work, DAY)[item]]


def phase_times(events: list, wall: float) -> dict[str, float]:
    """Seconds per phase name (summed over calls); `exit`: the end of the Python program
    to the end of spark-submit (shutdown hooks). Nested phases keep a '  ' per depth."""
    totals: dict[str, float] = defaultdict(float)
    for name, start, end, depth in events:
        totals["  " * depth + name] += end - start
    last_end = max((end for _, _, end, _ in events), default=0.0)
    if events:
        totals["exit"] = wall - last_end
    return dict(totals)


def machine() -> dict:
    model = next((line.split(":", 1)[1].strip() for line in
                  Path("/proc/cpuinfo").read_text().splitlines()
                  if line.startswith("model name")), platform.processor())
    return {"cpus": os.cpu_count(), "cpu": model, "platform": platform.platform(),
            "python": platform.python_version(), "load_avg": os.getloadavg()}


def summarise(runs: list[dict], variants: list[str], items: list[str]) -> dict:
    summary: dict = {}
    for variant in variants:
        mine = [run for run in runs if run["variant"] == variant and run["rc"] == 0]
        per_item = {}
        for item in items:
            walls = [run["wall_s"] for run in mine if run["item"] == item]
            if not walls:
                continue
            phases: dict[str, list[float]] = defaultdict(list)
            for run in mine:
                if run["item"] == item:
                    for name, seconds in run["phases"].items():
                        phases[name].append(seconds)
            per_item[item] = {"wall_s": statistics.median(walls), "runs": len(walls),
                              "phases": {name: statistics.median(values)
                                         for name, values in phases.items()}}
        summary[variant] = per_item
    return summary


def markdown(summary: dict, variants: list[str], items: list[str]) -> str:
    lines = ["| item | " + " | ".join(f"{v} wall s | {v} above empty s" for v in variants) + " |",
             "|---|" + "---|---|" * len(variants)]
    for item in items:
        cells = []
        for variant in variants:
            stats = summary[variant].get(item)
            empty = summary[variant].get("empty", {}).get("wall_s")
            if stats is None:
                cells += ["", ""]
                continue
            above = stats["wall_s"] - empty if empty is not None else float("nan")
            cells += [f"{stats['wall_s']:.1f}", f"{above:+.1f}"]
        lines.append(f"| {item} | " + " | ".join(cells) + " |")
    if len(variants) >= 2:
        first, last = variants[0], variants[-1]
        lines += ["", f"ratio {last} / {first} (wall, same run):"]
        for item in items:
            a, b = summary[first].get(item), summary[last].get(item)
            if a and b:
                lines.append(f"- {item}: {b['wall_s'] / a['wall_s']:.2f}")
    for item in items:
        names: list[str] = []
        for variant in variants:
            for name in summary[variant].get(item, {}).get("phases", {}):
                if name not in names:
                    names.append(name)
        if not names:
            continue
        lines += ["", f"phases of {item} (median s):", "",
                  "| phase | " + " | ".join(variants) + " |",
                  "|---|" + "---|" * len(variants)]
        for name in names:
            cells = [f"{summary[v].get(item, {}).get('phases', {}).get(name, float('nan')):.2f}"
                     for v in variants]
            label = name.replace("  ", "&nbsp;&nbsp;")
            lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--notes-per-day", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--variants", default='{"this": {}}',
                        help="JSON: name -> {tree, conf, java_options}")
    parser.add_argument("--jobs", default=",".join(JOBS))
    parser.add_argument("--references", default=",".join(REFERENCES))
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    work = (args.workdir or Path(tempfile.mkdtemp(prefix="job-overhead-"))).resolve()
    work.mkdir(parents=True, exist_ok=True)
    out = args.out or REPO / f"benchmarks/results/{date.today()}-cpu{os.cpu_count()}"
    out.mkdir(parents=True, exist_ok=True)
    variants = [Variant(name, spec, work) for name, spec in json.loads(args.variants).items()]
    items = [item for item in args.references.split(",") if item] + [
        item for item in args.jobs.split(",") if item]
    (work / "empty.py").write_text('"""An empty script: the cost of spark-submit itself."""\n')
    runs: list[dict] = []
    raw = (out / "job_overhead.jsonl").open("a")
    try:
        if not (work / "lake").exists():
            prepare(work, args.notes_per_day, variants[0])
        else:
            start_metastore(work, "start")
        host = machine()
        for repeat in range(args.repeats):
            # Alternate which variant goes first, so neither always meets a warmer page cache.
            order = variants if repeat % 2 == 0 else variants[::-1]
            for item in items:
                for variant in order:
                    script, script_args = item_command(item, work, variant)
                    phases_file = work / "phases.json"
                    phases_file.unlink(missing_ok=True)
                    wall, code, tail = variant.submit(script, script_args, phases_file)
                    events = json.loads(phases_file.read_text()) if phases_file.exists() else []
                    run = {"variant": variant.name, "item": item, "repeat": repeat,
                           "wall_s": round(wall, 3), "rc": code,
                           "phases": {k: round(v, 3) for k, v in
                                      phase_times(events, wall).items()},
                           "events": events, "tree": str(variant.tree), "conf": variant.conf,
                           "notes_per_day": args.notes_per_day, "machine": host,
                           "at": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
                    if code:
                        run["tail"] = tail
                    runs.append(run)
                    raw.write(json.dumps(run) + "\n")
                    raw.flush()
                    print(f"{repeat} {item:17s} {variant.name:10s} {wall:6.1f} s rc={code}",
                          flush=True)
                    if code:
                        print(tail, file=sys.stderr)
    finally:
        raw.close()
        start_metastore(work, "stop")
    names = [variant.name for variant in variants]
    summary = summarise(runs, names, items)
    table = markdown(summary, names, items)
    (out / "job_overhead.json").write_text(json.dumps(
        {"machine": machine(), "notes_per_day": args.notes_per_day, "repeats": args.repeats,
         "variants": {v.name: {"tree": str(v.tree), "conf": v.conf} for v in variants},
         "summary": summary}, indent=1) + "\n")
    (out / "job_overhead.md").write_text(table)
    print(table)
    if args.workdir is None:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
