"""Related notes at scale: the Spark jobs against one plain Python process, and Spark LSH;
a search task's index budget against today's whole index per task.

    python benchmarks/related_scale.py --sizes 100000,300000,1000000 --lsh-size 20000 \
        --out out/related_scale
    python benchmarks/related_scale.py budget --sizes 1000000,3000000 --num-shards 8 \
        --out out/related_budget

Data: clustered synthetic unit vectors (64-d, noise 1.0, one centre per 500 notes: 2,000 at
1M as in ../shared/STACK.md), one day, written once per size as Parquet and converted to a Delta
note_embeddings table (not timed). Then, timed one after the other on the same machine:
  spark  spark-submit jobs/build_index.py, then jobs/related_notes.py (local[2], --index-type
         auto, top-100 of every note, recall sampled on 200 queries against exact)
  plain  one Python process: the same Parquet, the same index parameters (params.py), FAISS
         on 2 threads, top-100 of every note, the same rows written as Parquet with pyarrow,
         recall on 200 queries against exact
  lsh    (--lsh-size notes) Spark MLlib BucketedRandomProjectionLSH approxSimilarityJoin and
         a top-100 window, the Spark-native peer
  breakdown  (--breakdown-size notes, one of --sizes) where related_notes' search + write
         time goes: in one Spark session, the same search written to nowhere, then to
         Spark's noop sink, to plain Parquet, to Delta as the job writes, and to Delta
         sorted by dt (Spark's default for partitioned writes); wall time and CPU seconds
         of the JVM and of the Python workers for each
budget (mode): per size, build_index with --num-shards, then related_notes on that index,
         alternately --repeats times each: with one group (the whole index in every task,
         as before the budget) and with --task-index-mib at a quarter of the index (groups
         loaded one at a time); medians and each pair's ratio;
         wall time, recall@100 on 200 sampled queries, and the peak RSS (VmHWM) of the
         Python workers and of the JVM, sampled from /proc every 0.2 s. Spark's default
         memory settings throughout (no --driver-memory).
Spark runs against a private metastore under --out. Writes <out>/related_scale.json and .md
(budget mode: related_budget.json and .md).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
DAY = "2026-11-24"
DIM = 64
TOP_K = 100
RECALL_QUERIES = 200
MODEL = "synthetic"
RUN_ID = "related_scale"


def clustered_unit_vectors(n: int, *, d: int = DIM, noise: float = 1.0,
                           seed: int = 0) -> np.ndarray:
    """Unit vectors around n/500 centres: STACK.md's 1M around 2,000, the same density at
    every size (with 2,000 centres at 100k a note's top-100 spans many clusters, a much
    harder set than the 1M one)."""
    rng = np.random.default_rng(seed)
    centres = max(1, n // 500)
    centre = rng.standard_normal((centres, d)).astype("float32")
    x = centre[rng.integers(0, centres, n)]
    x += noise * rng.standard_normal((n, d), dtype="float32")
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x


def write_parquet_embeddings(n: int, path: Path) -> Path:
    """note_embeddings rows of one day under path/dt=DAY/, as pyarrow writes them."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    xb = clustered_unit_vectors(n)
    table = pa.table({
        "note_id": pa.array([f"n{i:08d}" for i in range(n)]),
        "embedding": pa.FixedSizeListArray.from_arrays(pa.array(xb.ravel()), DIM).cast(
            pa.list_(pa.float32())),
        "visual_embedding": pa.nulls(n, pa.list_(pa.float32())),
        "model_version": pa.array([MODEL] * n),
        "image_ok": pa.array(np.zeros(n, dtype=bool)),
        "run_id": pa.array([RUN_ID] * n),
    })
    part = path / f"dt={DAY}"
    part.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, part / "part-00000.parquet", row_group_size=65536)
    return part


def read_parquet_embeddings(part: Path) -> tuple[np.ndarray, np.ndarray]:
    import pyarrow.parquet as pq

    table = pq.read_table(part, columns=["note_id", "embedding"])
    ids = table["note_id"].to_numpy()
    xb = np.stack(table["embedding"].to_numpy(zero_copy_only=False)).astype("float32")
    return ids, xb


def recall(found: np.ndarray, exact: np.ndarray) -> float:
    return float(np.mean([len(set(a[a >= 0]) & set(b[b >= 0])) / max(1, (b >= 0).sum())
                          for a, b in zip(found, exact)]))


def run_plain(part: Path, out: Path) -> dict:
    """The plain process: everything the two Spark jobs do, in one Python process."""
    import faiss
    import pyarrow as pa
    import pyarrow.parquet as pq

    from notellm2_udf.index.params import choose_params
    from notellm2_udf.index.search import search_shards
    from notellm2_udf.index.shards import fill_shard, train_index

    started = time.monotonic()
    ids, xb = read_parquet_embeddings(part)
    order = np.argsort(ids, kind="stable")  # global ids in note_id order, as the jobs use
    ids, xb = ids[order], np.ascontiguousarray(xb[order])
    params = choose_params(n=len(xb), d=DIM)
    rng = np.random.default_rng(0)
    sample = rng.choice(len(xb), params.train_size(len(xb)), replace=False) if (
        params.needs_training) else np.arange(0)
    faiss.omp_set_num_threads(2)
    index = fill_shard(train_index(xb[np.sort(sample)], params=params, threads=2), xb)
    if params.search:
        faiss.ParameterSpace().set_index_parameters(index, params.search)
    build_s = time.monotonic() - started

    schema = pa.schema([("dt", pa.string()), ("note_id", pa.string()), ("rank", pa.int32()),
                        ("related_note_id", pa.string()), ("score", pa.float32()),
                        ("model_version", pa.string())])
    rows = 0
    with pq.ParquetWriter(out, schema) as writer:
        for lo in range(0, len(xb), 10_000):
            hi = min(lo + 10_000, len(xb))
            D, G = search_shards([(index, 0)], xb[lo:hi], TOP_K, exclude=np.arange(lo, hi))
            found = G >= 0
            n_rows = int(found.sum())
            writer.write_table(pa.table({
                "dt": pa.array([DAY] * n_rows), "note_id": np.repeat(ids[lo:hi], found.sum(1)),
                "rank": np.broadcast_to(np.arange(1, TOP_K + 1, dtype="int32"), G.shape)[found],
                "related_note_id": ids[G[found]], "score": D[found],
                "model_version": pa.array([MODEL] * n_rows)}, schema=schema))
            rows += n_rows
    search_s = time.monotonic() - started - build_s

    queries = np.random.default_rng(1).choice(len(xb), RECALL_QUERIES, replace=False)
    _, G = search_shards([(index, 0)], xb[queries], TOP_K, exclude=queries)
    scores = xb[queries] @ xb.T
    scores[np.arange(len(queries)), queries] = -np.inf
    exact = np.argsort(-scores, axis=1, kind="stable")[:, :TOP_K]
    return {"factory": params.factory, "search": params.search, "rows": rows,
            "build_s": round(build_s, 1), "search_write_s": round(search_s, 1),
            "recall": round(recall(G, exact), 4),
            "total_s": round(time.monotonic() - started, 1)}


def run_lsh(part: Path) -> dict:
    """Spark MLlib's LSH similarity join + top-100 window (run under spark-submit)."""
    from pyspark.ml.feature import BucketedRandomProjectionLSH
    from pyspark.ml.functions import array_to_vector
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    from notellm2_udf.spark.session import SparkSettings, build_spark_session

    spark = build_spark_session(SparkSettings(app_name="related_scale lsh"))
    ids, xb = read_parquet_embeddings(part)
    queries = np.random.default_rng(1).choice(len(xb), RECALL_QUERIES, replace=False)
    scores = xb[queries] @ xb.T
    scores[np.arange(len(queries)), queries] = -np.inf
    exact = np.argsort(-scores, axis=1, kind="stable")[:, :TOP_K]
    # Give LSH the right radius: the median distance of the 100th neighbour.
    kth_cos = float(np.median(np.take_along_axis(scores, exact[:, -1:], 1)))
    threshold = float(np.sqrt(2 - 2 * kth_cos)) * 1.1

    started = time.monotonic()
    notes_df = spark.read.parquet(str(part)).select(
        "note_id", array_to_vector("embedding").alias("v"))
    model = BucketedRandomProjectionLSH(inputCol="v", outputCol="h", bucketLength=threshold,
                                        numHashTables=3, seed=0).fit(notes_df)
    nearest = Window.partitionBy("note_id").orderBy("dist", "related_note_id")
    related_df = (
        model.approxSimilarityJoin(notes_df, notes_df, threshold, distCol="dist")
        .select(F.col("datasetA.note_id").alias("note_id"),
                F.col("datasetB.note_id").alias("related_note_id"), "dist")
        .where(F.col("note_id") != F.col("related_note_id"))
        .withColumn("rank", F.row_number().over(nearest))
        .where(F.col("rank") <= TOP_K)
    )
    pdf = related_df.toPandas()
    seconds = time.monotonic() - started
    position = {note_id: i for i, note_id in enumerate(ids)}
    by_query = pdf.groupby("note_id")["related_note_id"].agg(list)
    found = np.full((len(queries), TOP_K), -1)
    for row, q in enumerate(queries):
        got = [position[r] for r in by_query.get(ids[q], [])]
        found[row, :len(got)] = got
    return {"notes": len(xb), "threshold": round(threshold, 3),
            "bucket_length": round(threshold, 3), "hash_tables": 3, "rows": len(pdf),
            "seconds": round(seconds, 1),
            "recall": round(recall(found, exact), 4)}


def process_cpu_s(pid: int, *, children: bool) -> float:
    """User + system CPU seconds of `pid` (and of its reaped children) from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = sum(int(value) for value in fields[11:15 if children else 13])
    return ticks / os.sysconf("SC_CLK_TCK")


def spark_cpu_s() -> tuple[float, dict[int, float]]:
    """CPU seconds so far of the JVM (this driver's parent under spark-submit) and of each
    process it started but this driver (the Python workers)."""
    jvm = os.getppid()
    parent = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parent[int(entry.name)] = int(
                    (entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (FileNotFoundError, ProcessLookupError):  # ended meanwhile
                pass
    workers, frontier = set(), {jvm}
    while frontier:
        frontier = {pid for pid, ppid in parent.items() if ppid in frontier} - workers
        workers |= frontier
    python = {}
    for pid in workers - {os.getpid()}:
        try:
            python[pid] = process_cpu_s(pid, children=True)
        except (FileNotFoundError, ProcessLookupError):
            pass
    return process_cpu_s(jvm, children=False), python


def run_breakdown(data: Path) -> list[dict]:
    """Search + write of related_notes cut into steps, each timed in one session."""
    from jobs.related_notes import ONE_DAY_WRITE, search_tasks, with_day
    from notellm2_udf.index.corpus import latest_embeddings, read_embeddings
    from notellm2_udf.index.layout import read_manifest
    from notellm2_udf.index.loaded import DEFAULT_TASK_INDEX_MIB, LoadedShards
    from notellm2_udf.index.related import RELATED, query_arrays, related_notes_df
    from notellm2_udf.spark.delta_io import conform, replace_days
    from notellm2_udf.spark.executor_resources import use_task_cpus_for_faiss
    from notellm2_udf.spark.session import SparkSettings, build_spark_session, session_conf
    from schemas import RELATED_NOTES

    data = data.resolve()  # Delta's SQL takes the location as a path, not a name
    spark = build_spark_session(SparkSettings(app_name="related_scale breakdown"))
    manifest = read_manifest(data / "index", DAY)
    corpus_df = latest_embeddings(read_embeddings(spark, str(data / "note_embeddings")),
                                  day=DAY, window_days=manifest.window_days).persist()
    corpus_df.count()
    tasks = search_tasks(spark, manifest.rows)

    def search_dropped(batches):
        use_task_cpus_for_faiss()
        index = LoadedShards(manifest, manifest.shards)
        for batch in batches:
            xq, note_ids = query_arrays(batch)
            index.search(xq, TOP_K, exclude=index.global_ids(note_ids))
        yield from ()

    def rows_df():
        return conform(with_day(related_notes_df(corpus_df, manifest=manifest, k=TOP_K,
                                                 num_tasks=tasks,
                                                 task_index_bytes=DEFAULT_TASK_INDEX_MIB << 20),
                                day=DAY, model_version=MODEL), RELATED_NOTES)

    def delta(rows=None) -> None:
        replace_days(rows_df() if rows is None else rows, RELATED_NOTES,
                     str(data / "breakdown_delta"), DAY)

    def write_one_day(write):
        with session_conf(spark, ONE_DAY_WRITE):
            write()

    steps = {
        "search, rows dropped in Python": lambda: (
            corpus_df.select("note_id", "embedding").repartition(tasks)
            .mapInArrow(search_dropped, RELATED).write.format("noop").mode("overwrite").save()),
        "+ rows to the JVM (noop sink)": lambda: (
            rows_df().write.format("noop").mode("overwrite").save()),
        "+ Parquet files (Spark)": lambda: write_one_day(
            lambda: rows_df().write.partitionBy("dt").mode("overwrite").parquet(
                str(data / "breakdown_parquet"))),
        "+ Delta, as the job writes": lambda: write_one_day(delta),
        "Delta sorted by dt (before)": delta,
    }
    # Warm-up, untimed: the Delta table and its log, the JIT, the index in the workers.
    # The limited write first: Spark ends the workers whose output it stops reading.
    delta(rows_df().limit(1000))
    steps["+ rows to the JVM (noop sink)"]()
    results = []
    for name, step in steps.items():
        (jvm_before, workers_before), started = spark_cpu_s(), time.monotonic()
        step()
        jvm_after, workers_after = spark_cpu_s()
        # A worker that ended during the step takes its CPU seconds with it (none should).
        python = sum(cpu - workers_before.get(pid, 0.0) for pid, cpu in workers_after.items())
        results.append({"step": name, "wall_s": round(time.monotonic() - started, 1),
                        "jvm_cpu_s": round(jvm_after - jvm_before, 1),
                        "python_cpu_s": round(python, 1),
                        "load1": round(os.getloadavg()[0], 1)})
    return results


class PeakRss:
    """Peak resident memory (VmHWM) of Spark's Python workers and of the driver JVM while
    the `with` block runs, in MiB; a process is sampled every 0.2 s until it ends."""

    def __init__(self):
        import threading

        self.peaks: dict[int, tuple[str, int]] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()

    def _sample(self) -> None:
        while not self._stop.wait(0.2):
            for proc in Path("/proc").glob("[0-9]*"):
                try:
                    cmdline = (proc / "cmdline").read_bytes()
                    kind = ("python" if b"pyspark.daemon" in cmdline or b"pyspark.worker" in cmdline
                            else "jvm" if b"org.apache.spark.deploy.SparkSubmit" in cmdline
                            else None)
                    if kind:
                        status = (proc / "status").read_text()
                        hwm = int(re.search(r"VmHWM:\s+(\d+)", status).group(1))
                        self.peaks[int(proc.name)] = (kind, max(hwm, self.peaks.get(
                            int(proc.name), (kind, 0))[1]))
                except (OSError, AttributeError):
                    continue

    def mib(self, kind: str) -> float:
        return round(max((kb for k, kb in self.peaks.values() if k == kind), default=0) / 1024, 1)


def timed(command: list[str], env: dict) -> tuple[float, str]:
    started = time.monotonic()
    result = subprocess.run(command, env=env, cwd=REPO, capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"{command[:3]} failed:\n{result.stdout[-3000:]}{result.stderr[-3000:]}")
    return time.monotonic() - started, result.stdout


def summary_facts(stdout: str) -> dict:
    line = next(line for line in stdout.splitlines() if " done in " in line)
    # key=value pairs joined by ", "; values may hold commas ("IVF4000,Flat", lists).
    return dict(re.findall(r"([\w@]+)=(.*?)(?=, [\w@]+=|$)", line.split(": ", 1)[1]))


def run_size(n: int, out: Path, env: dict, spark_submit: list[str]) -> dict:
    data = out / f"n{n}"
    part = write_parquet_embeddings(n, data / "note_embeddings")
    load_start = round(os.getloadavg()[0], 1)
    timed(spark_submit + [__file__, "convert", "--table", str(data / "note_embeddings")], env)
    common = ["--date", DAY, "--embeddings", str(data / "note_embeddings"),
              "--index-dir", str(data / "index")]
    build_s, build_out = timed(spark_submit + [str(REPO / "jobs/build_index.py"), *common], env)
    related_s, related_out = timed(
        spark_submit + [str(REPO / "jobs/related_notes.py"), *common,
                        "--related", str(data / "related_notes"), "--top-k", str(TOP_K),
                        "--recall-sample", str(RECALL_QUERIES)], env)
    plain_s, plain_out = timed([sys.executable, __file__, "plain", "--part", str(part),
                                "--result", str(data / "plain_related.parquet")], env)
    plain = json.loads(plain_out.strip().splitlines()[-1])
    built, related = summary_facts(build_out), summary_facts(related_out)
    spark_s = build_s + related_s
    return {
        "notes": n, "index": built["index"], "search": built["search"],
        "shards": int(built["shards"]),
        "spark_build_s": round(build_s, 1), "spark_related_s": round(related_s, 1),
        "spark_s": round(spark_s, 1), "spark_rows": int(related["rows"]),
        "spark_recall": float(related[f"sampled_recall@{TOP_K}"]),
        "spark_job_build_s": float(built["build_s"]),
        "spark_job_search_write_s": float(related["search_write_s"]),
        "plain_s": round(plain_s, 1), "plain": plain,
        "ratio": round(spark_s / plain_s, 2),
        "load1": [load_start, round(os.getloadavg()[0], 1)],
    }


def run_budget_size(n: int, out: Path, env: dict, spark_submit: list[str], num_shards: int,
                    repeats: int, runs_of: tuple[str, ...]) -> dict:
    """build_index, then related_notes with one group and with a quarter-index budget,
    alternately, `repeats` times each."""
    from notellm2_udf.index.layout import read_manifest
    from notellm2_udf.index.loaded import entry_bytes

    data = out / f"n{n}"
    write_parquet_embeddings(n, data / "note_embeddings")
    timed(spark_submit + [__file__, "convert", "--table", str(data / "note_embeddings")], env)
    common = ["--date", DAY, "--embeddings", str(data / "note_embeddings"),
              "--index-dir", str(data / "index")]
    with PeakRss() as build_peak:
        build_s, build_out = timed(spark_submit + [str(REPO / "jobs/build_index.py"), *common,
                                                   "--num-shards", str(num_shards)], env)
    manifest = read_manifest(data / "index", DAY)
    index_mib = sum(entry_bytes(entry) for entry in manifest.shards) / 2**20
    # One group: a budget no index here reaches (1 TiB), i.e. every task holds all shards.
    budgets = {name: mib for name, mib in
               [("whole index", 1 << 20), ("quarter", int(index_mib // 4))]
               if name.split()[0] in runs_of}
    runs = {name: [] for name in budgets}
    for repeat in range(repeats):
        for name, budget_mib in budgets.items():
            with PeakRss() as peak:
                wall_s, stdout = timed(spark_submit + [
                    str(REPO / "jobs/related_notes.py"), *common, "--related",
                    str(data / f"related_{budget_mib}_{repeat}"), "--top-k", str(TOP_K),
                    "--recall-sample", str(RECALL_QUERIES), "--task-index-mib",
                    str(budget_mib)], env)
            facts = summary_facts(stdout)
            runs[name].append({
                "budget_mib": budget_mib, "groups": int(facts["shard_groups"]),
                "wall_s": round(wall_s, 1), "search_write_s": float(facts["search_write_s"]),
                "recall_s": float(facts["recall_s"]),
                "recall": float(facts[f"sampled_recall@{TOP_K}"]),
                "rows": int(facts["rows"]), "python_peak_mib": peak.mib("python"),
                "jvm_peak_mib": peak.mib("jvm"), "load1": round(os.getloadavg()[0], 1)})
            print(json.dumps({"notes": n, name: runs[name][-1]}), flush=True)
    built = summary_facts(build_out)
    median = {name: statistics.median(run["wall_s"] for run in done)
              for name, done in runs.items()}
    return {"notes": n, "index": built["index"], "shards": int(built["shards"]),
            "index_mib": round(index_mib, 1), "build_s": round(build_s, 1),
            "build_python_peak_mib": build_peak.mib("python"),
            "build_jvm_peak_mib": build_peak.mib("jvm"), "runs": runs,
            "median_wall_s": median,
            "ratio": (round(median["quarter"] / median["whole index"], 2)
                      if len(median) == 2 else None),
            "pair_ratios": [round(q["wall_s"] / w["wall_s"], 2)
                            for w, q in zip(runs.get("whole index", []), runs.get("quarter", []))]}


def budget_markdown(result: dict) -> str:
    lines = [
        f"Run {result['date']} on {result['machine']}; load average before: "
        f"{result['load_before']}, after: {result['load_after']}.", "",
        "| notes | index | shards | index MiB | build s (JVM / Python peak MiB) | run | "
        "task budget MiB | groups | related s (search + write / recall pass) | recall@100 | "
        "rows | Python worker peak MiB | JVM peak MiB | load (1 min) after |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in result["sizes"]:
        for name, run in ((name, run) for name, done in r["runs"].items() for run in done):
            lines.append(
                f"| {r['notes']:,} | {r['index']} | {r['shards']} | {r['index_mib']} | "
                f"{r['build_s']} ({r['build_jvm_peak_mib']} / {r['build_python_peak_mib']}) | "
                f"{name} | {run['budget_mib']} | {run['groups']} | {run['wall_s']} "
                f"({run['search_write_s']} / {run['recall_s']}) | "
                f"{run['recall']} | {run['rows']:,} | {run['python_peak_mib']} | "
                f"{run['jvm_peak_mib']} | {run['load1']} |")
    lines += [""] + [f"- {r['notes']:,} notes: quarter / whole index median wall time "
                     f"{r['median_wall_s']['quarter']} / {r['median_wall_s']['whole index']} s"
                     f" = {r['ratio']} (pairs, in the order run: {r['pair_ratios']})"
                     for r in result["sizes"] if r["ratio"] is not None]
    return "\n".join(lines) + "\n"


def markdown(result: dict) -> str:
    lines = [
        f"Run {result['date']} on {result['machine']}; load average before: "
        f"{result['load_before']}, after: {result['load_after']}.", "",
        "| notes | index | shards | Spark build s | Spark related s | Spark total s | "
        "plain total s | Spark / plain | recall@100 Spark | recall@100 plain | rows | "
        "load (1 min) start, end |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in result["sizes"]:
        lines.append(
            f"| {r['notes']:,} | {r['index']} {r['search']} | {r['shards']} | "
            f"{r['spark_build_s']} | {r['spark_related_s']} | {r['spark_s']} | {r['plain_s']} | "
            f"{r['ratio']} | {r['spark_recall']} | {r['plain']['recall']} | "
            f"{r['spark_rows']:,} | {r['load1'][0]}, {r['load1'][1]} |")
    if result.get("breakdown"):
        lines += ["", f"Where related_notes' search + write goes at {result['breakdown_size']:,} "
                  "notes (one Spark session, steps one after the other):", "",
                  "| step | wall s | JVM CPU s | Python workers CPU s | load (1 min) |",
                  "|---|---|---|---|---|"]
        lines += [f"| {b['step']} | {b['wall_s']} | {b['jvm_cpu_s']} | {b['python_cpu_s']} | "
                  f"{b['load1']} |" for b in result["breakdown"]]
    if result.get("lsh"):
        lsh = result["lsh"]
        lines += ["", f"Spark MLlib BucketedRandomProjectionLSH at {lsh['notes']:,} notes "
                  f"(bucketLength {lsh['bucket_length']}, {lsh['hash_tables']} tables, join "
                  f"threshold {lsh['threshold']}): {lsh['seconds']} s for the join + top-100 "
                  f"(spark-submit wall {lsh['wall_s']} s), recall@100 {lsh['recall']}."]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("mode", nargs="?", default="bench",
                        choices=("bench", "budget", "plain", "lsh", "convert", "breakdown"))
    parser.add_argument("--sizes", default="100000,300000,1000000")
    parser.add_argument("--lsh-size", type=int, default=20000, help="0: skip the LSH peer")
    parser.add_argument("--breakdown-size", type=int, default=300000,
                        help="one of --sizes; 0: skip the search + write breakdown")
    parser.add_argument("--num-shards", type=int, default=8, help="budget mode's shards")
    parser.add_argument("--repeats", type=int, default=1,
                        help="budget mode: related_notes runs of each budget, alternately")
    parser.add_argument("--runs", default="whole,quarter",
                        help="budget mode: which of whole,quarter to run (default both)")
    parser.add_argument("--out", type=Path, default=REPO / "out" / "related_scale")
    parser.add_argument("--part", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--result", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--table", help=argparse.SUPPRESS)
    parser.add_argument("--data", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    sizes = [int(size) for size in args.sizes.split(",")]
    if args.mode == "budget":
        return run_budget(args, sizes)
    if args.mode == "bench" and args.breakdown_size and args.breakdown_size not in sizes:
        parser.error("--breakdown-size must be one of --sizes (or 0)")

    if args.mode == "plain":
        print(json.dumps(run_plain(args.part, args.result)))
        return 0
    if args.mode == "lsh":
        print(json.dumps(run_lsh(args.part)))
        return 0
    if args.mode == "breakdown":
        print(json.dumps(run_breakdown(args.data)))
        return 0
    if args.mode == "convert":
        from notellm2_udf.spark.session import SparkSettings, build_spark_session

        spark = build_spark_session(SparkSettings(app_name="related_scale convert"))
        spark.sql(f"CONVERT TO DELTA parquet.`{args.table}` PARTITIONED BY (dt STRING)")
        return 0

    out, env = spark_environment(args.out)
    spark_submit = [str(BIN / "spark-submit"), "--master", "local[2]", "--driver-memory", "8g"]
    result = run_header()
    for n in sizes:
        result["sizes"].append(run_size(n, out, env, spark_submit))
        print(json.dumps(result["sizes"][-1]), flush=True)
    if args.breakdown_size:
        _, stdout = timed(spark_submit + [__file__, "breakdown", "--data",
                                          str(out / f"n{args.breakdown_size}")], env)
        result["breakdown_size"] = args.breakdown_size
        result["breakdown"] = json.loads(stdout.strip().splitlines()[-1])
        print(json.dumps(result["breakdown"]), flush=True)
    if args.lsh_size:
        part = write_parquet_embeddings(args.lsh_size, out / f"lsh{args.lsh_size}")
        wall_s, stdout = timed(spark_submit + [__file__, "lsh", "--part", str(part)], env)
        result["lsh"] = {**json.loads(stdout.strip().splitlines()[-1]), "wall_s": round(wall_s, 1)}
        print(json.dumps(result["lsh"]), flush=True)
    result["load_after"] = os.getloadavg()
    (out / "related_scale.json").write_text(json.dumps(result, indent=1))
    (out / "related_scale.md").write_text(markdown(result))
    print(markdown(result))
    return 0


def spark_environment(out: Path) -> tuple[Path, dict]:
    """The output directory and an environment whose Spark uses a private metastore there."""
    out = out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "SPARK_CONF_DIR": str(out / "conf"), "SPARK_LOCAL_IP": "127.0.0.1",
           "PYSPARK_PYTHON": sys.executable, "PYSPARK_DRIVER_PYTHON": sys.executable}
    subprocess.run([str(BIN / "notellm2"), "spark-defaults", "--jars-dir",
                    str(REPO / ".cache" / "jars"), "--lakehouse", str(out / "lakehouse"),
                    "--write"], env=env, check=True, capture_output=True)
    return out, env


def run_header() -> dict:
    return {"date": datetime.now(UTC).isoformat(timespec="seconds"),
            "machine": f"{os.cpu_count()} cores, no GPU", "load_before": os.getloadavg(),
            "sizes": []}


def run_budget(args, sizes: list[int]) -> int:
    """Budget mode, with Spark's default memory settings (no --driver-memory)."""
    out, env = spark_environment(args.out)
    spark_submit = [str(BIN / "spark-submit"), "--master", "local[2]"]
    result = run_header()
    for n in sizes:
        result["sizes"].append(run_budget_size(n, out, env, spark_submit, args.num_shards,
                                               args.repeats, tuple(args.runs.split(","))))
        print(json.dumps(result["sizes"][-1]), flush=True)
    result["load_after"] = os.getloadavg()
    (out / "related_budget.json").write_text(json.dumps(result, indent=1))
    (out / "related_budget.md").write_text(budget_markdown(result))
    print(budget_markdown(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
