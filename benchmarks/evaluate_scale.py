"""The evaluation's ranking and Recall@K on synthetic embeddings, with a 1 GiB driver.

    python benchmarks/evaluate_scale.py --notes 200000 [--dim 64] [--driver-memory 1g]
        [--block-rows 8192] [--local-pairs 100000] [--json OUT.json]

Issue 17's proof that evaluation no longer gathers the held-out notes on the driver: N
synthetic held-out notes (embeddings, text lengths) and their candidate pairs are generated
inside Spark (one true partner per note pair, plus a lower-scored pair from every note to
another, so the greedy selection has conflicts to settle), then the protocol of
jobs/evaluate.py after encoding runs on them (notellm2_udf.evaluation.protocol: test-pair
selection, length subsets, sharded ranking, Recall@K). Spark runs in a child process,
local[2] with spark.driver.memory = --driver-memory (in local mode the driver is also the
executor); this process samples the child's memory. Prints and writes: wall time per stage,
the JVM's max heap, peak RSS of the JVM and of the Python workers, counts and recalls.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
KS = (10, 100, 1000)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--notes", type=int, default=200_000)
    parser.add_argument("--dim", type=int, default=64)
    parser.add_argument("--driver-memory", default="1g")
    parser.add_argument("--block-rows", type=int, default=None)
    parser.add_argument("--local-pairs", type=int, default=None)
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(run_child(args)))
        return 0
    result = run_parent(argv or sys.argv[1:])
    result.update(notes=args.notes, dim=args.dim, driver_memory=args.driver_memory,
                  machine=f"{platform.node()} {os.cpu_count()} CPUs",
                  date=time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()))
    text = json.dumps(result, indent=1)
    print(text)
    if args.json:
        args.json.write_text(text + "\n")
    return 0


def run_parent(argv: list[str]) -> dict:
    """Runs this script with --child, sampling the memory of its process tree."""
    import psutil

    child = subprocess.Popen([sys.executable, __file__, *argv, "--child"], cwd=REPO,
                             stdout=subprocess.PIPE, text=True,
                             env={**os.environ, "PYTHONPATH": str(REPO)})
    peaks = {"jvm_rss_mb": 0.0, "python_workers_rss_mb": 0.0}
    root = psutil.Process(child.pid)
    while child.poll() is None:
        jvm = workers = 0
        for process in root.children(recursive=True):
            try:
                rss = process.memory_info().rss / 2**20
                if "java" in process.name():
                    jvm += rss
                elif "python" in process.name():
                    workers += rss
            except psutil.NoSuchProcess:
                continue
        peaks["jvm_rss_mb"] = max(peaks["jvm_rss_mb"], round(jvm))
        peaks["python_workers_rss_mb"] = max(peaks["python_workers_rss_mb"], round(workers))
        time.sleep(0.5)
    output = child.stdout.read()
    if child.returncode:
        raise SystemExit(f"child failed ({child.returncode})")
    return {**json.loads(output.strip().splitlines()[-1]), **peaks}


def run_child(args) -> dict:
    from notellm2_udf.evaluation.protocol import evaluate_embeddings, test_pair_sets
    from notellm2_udf.evaluation.ranking import RankingSettings
    from notellm2_udf.spark.session import SparkSettings, build_spark_session

    defaults = RankingSettings()
    settings = RankingSettings(block_rows=args.block_rows or defaults.block_rows,
                               local_pairs=args.local_pairs or defaults.local_pairs)
    spark = build_spark_session(SparkSettings(
        app_name="bench-evaluate-scale", master="local[2]",
        overrides={"spark.driver.memory": args.driver_memory, "spark.ui.enabled": "false",
                   "spark.ui.showConsoleProgress": "false",
                   "spark.sql.shuffle.partitions": "8"}))
    spark.sparkContext.setLogLevel("ERROR")
    max_heap_mb = spark.sparkContext._jvm.java.lang.Runtime.getRuntime().maxMemory() / 2**20
    notes_df, pairs_df = synthetic_tables(spark, args.notes, args.dim)
    notes_df = notes_df.localCheckpoint()
    started = time.monotonic()
    pair_sets = test_pair_sets(pairs_df, notes_df.select("note_id", "chars"), settings)
    counts = {name: df.count() for name, df in pair_sets.items()}
    selected = time.monotonic()
    overall, subsets = evaluate_embeddings(pair_sets, notes_df.select("note_id", "embedding"),
                                           KS, settings)
    ranked = time.monotonic()
    spark.stop()
    return {"max_heap_mb": round(max_heap_mb), "settings": settings.__dict__,
            "selection_s": round(selected - started, 1), "ranking_s": round(ranked - selected, 1),
            "wall_s": round(ranked - started, 1), "counts": counts, "recall": overall,
            "subsets": subsets}


def synthetic_tables(spark, notes: int, dim: int):
    """(notes: note_id, chars, embedding; pairs: note_id, related_note_id, score), made in
    Spark from hashes: notes 2i and 2i+1 share a direction (a true pair, score >= 1), and
    every note also points to another, unrelated note (score < 1)."""
    from pyspark.sql import functions as F

    def uniform(*columns):
        return F.pmod(F.xxhash64(*columns), F.lit(1 << 20)) / float(1 << 20) - 0.5

    ids = spark.range(notes)
    note_id = F.format_string("n%07d", F.col("id"))
    embedding = F.transform(F.sequence(F.lit(0), F.lit(dim - 1)), lambda j: (
        uniform(F.floor(F.col("id") / 2), j) + 0.7 * uniform(F.col("id"), j)).cast("float"))
    notes_df = ids.select(note_id.alias("note_id"),
                          F.pmod(F.xxhash64("id", F.lit("chars")), F.lit(2000)).alias("chars"),
                          embedding.alias("embedding"))
    true_df = ids.where(F.col("id") % 2 == 0).select(
        note_id.alias("note_id"), F.format_string("n%07d", F.col("id") + 1).alias(
            "related_note_id"), (1.0 + uniform("id", F.lit("score"))).alias("score"))
    other = F.pmod(F.col("id") * 7919 + 13, F.lit(notes))
    noise_df = ids.select(note_id.alias("note_id"),
                          F.format_string("n%07d", other).alias("related_note_id"),
                          (0.5 + uniform("id", F.lit("noise"))).alias("score"))
    return notes_df, true_df.unionByName(noise_df)


if __name__ == "__main__":
    raise SystemExit(main())
