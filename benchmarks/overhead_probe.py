"""What benchmarks/job_overhead.py runs inside spark-submit: a job with its phases timed, the
session alone, or the ladder of first-time costs.

    spark-submit benchmarks/overhead_probe.py job NAME FLAGS...   # jobs/NAME.py's main(FLAGS)
    spark-submit benchmarks/overhead_probe.py session             # build the session, stop
    spark-submit benchmarks/overhead_probe.py ladder TABLE MODEL  # first Hive call, ...
    spark-submit benchmarks/overhead_probe.py scale ROWS DIR      # JVM-bound work of a big day

Phases go as JSON to $OVERHEAD_PHASES: (name, start, end, depth) with times in seconds since
$OVERHEAD_T0, the epoch at which the benchmark started spark-submit; so `python_start` is
the JVM's and spark-submit's share. A job runs as its own spark-submit would run it (its
`main(argv)`); its functions are timed by wrapping, in its module's namespace, each function
it imports from the project, and the Delta and catalogue helpers wherever they are bound.
"""

from __future__ import annotations

import functools
import importlib
import json
import os
import sys
import time

T0 = float(os.environ.get("OVERHEAD_T0", time.time()))
EVENTS: list[tuple[str, float, float, int]] = [("python_start", 0.0, time.time() - T0, 0)]
_depth = 0

# Bound in several modules; timed wherever a project module imported them.
SHARED_HELPERS = ("replace_days", "ensure_table", "register_table", "read_day", "read_table",
                  "set_properties", "persist_on_disk", "build_spark_session")


def timed(name: str, fn):
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        global _depth
        _depth += 1
        started = time.time() - T0
        try:
            return fn(*args, **kwargs)
        finally:
            _depth -= 1
            EVENTS.append((name, started, time.time() - T0, _depth))
    wrapper.__overhead_timed__ = True
    return wrapper


def mark(name: str, started: float) -> None:
    EVENTS.append((name, started, time.time() - T0, 0))


def instrument(job_module) -> None:
    """Wrap the job's project functions and the shared helpers in every project module."""
    for name, value in list(vars(job_module).items()):
        if (callable(value) and getattr(value, "__module__", "").startswith("notellm2_udf")
                and not isinstance(value, type) and name != "job_main"):
            setattr(job_module, name, timed(name, value))
    for module_name, module in list(sys.modules.items()):
        if not module_name.startswith(("notellm2_udf", "jobs.")) or module is None:
            continue
        for name in SHARED_HELPERS:
            value = getattr(module, name, None)
            if callable(value) and not getattr(value, "__overhead_timed__", False):
                setattr(module, name, timed(name, value))


def run_job(name: str, argv: list[str]) -> int:
    started = time.time() - T0
    module = importlib.import_module(f"jobs.{name}")
    mark("import_job", started)
    instrument(module)
    started = time.time() - T0
    try:
        return module.main(argv)
    finally:
        mark("job_main", started)


def run_session() -> int:
    from notellm2_udf.spark.session import SparkSettings, build_spark_session

    started = time.time() - T0
    spark = build_spark_session(SparkSettings(app_name="overhead session"))
    mark("session", started)
    started = time.time() - T0
    spark.stop()
    mark("stop", started)
    return 0


def _worker_step(batches):
    """Python worker start-up, then (on the ladder's later steps) torch and the model."""
    import pandas as pd

    for batch in batches:
        yield pd.DataFrame({"pid": [os.getpid()], "rows": [len(batch)]})


def _torch_step(model_dir: str):
    def step(batches):
        import pandas as pd

        started = time.monotonic()
        import torch  # noqa: F401
        torch_s = time.monotonic() - started
        from notellm2_udf.embedding.udf import load_encoder
        from notellm2_udf.inference.settings import EncoderSettings
        from notellm2_udf.registry.versions import PinnedModel

        started = time.monotonic()
        load_encoder(PinnedModel("probe", model_dir), EncoderSettings(), "cpu")
        load_s = time.monotonic() - started
        for batch in batches:
            yield pd.DataFrame({"torch_s": [torch_s], "load_s": [load_s], "rows": [len(batch)]})
    return step


def run_ladder(table: str, model_dir: str) -> int:
    """Each first-time cost a daily job pays, in the order a job meets them."""
    from notellm2_udf.spark.session import SparkSettings, build_spark_session

    started = time.time() - T0
    spark = build_spark_session(SparkSettings(app_name="overhead ladder"))
    mark("session", started)
    started = time.time() - T0
    spark.sql("SHOW DATABASES").collect()
    mark("first_hive_call", started)
    started = time.time() - T0
    spark.read.format("delta").load(table).count()
    mark("first_delta_count", started)
    started = time.time() - T0
    spark.read.format("delta").load(table).count()
    mark("second_delta_count", started)
    schema = "pid int, rows long"
    started = time.time() - T0
    spark.range(2, numPartitions=2).mapInPandas(_worker_step, schema).collect()
    mark("python_workers_start", started)
    started = time.time() - T0
    rows = (spark.range(2, numPartitions=2)
            .mapInPandas(_torch_step(model_dir), "torch_s double, load_s double, rows long")
            .collect())
    mark("worker_torch_and_model", started)
    EVENTS.append(("worker_torch_import", 0.0, max(row["torch_s"] for row in rows), 1))
    EVENTS.append(("worker_model_load", 0.0, max(row["load_s"] for row in rows), 1))
    started = time.time() - T0
    spark.stop()
    mark("stop", started)
    return 0


def run_scale(rows: str, table: str) -> int:
    """The JVM side of a big day, with the daily jobs' shapes: write `rows` embedding-like
    rows (64 floats) to Delta, read them back, keep the newest row per note (a window) and
    join the result to itself; the seconds of that work, without the start-up."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    from notellm2_udf.spark.session import SparkSettings, build_spark_session

    spark = build_spark_session(SparkSettings(app_name="overhead scale"))
    started = time.time() - T0
    (spark.range(int(rows), numPartitions=8)
     .select((F.col("id") % (int(rows) // 2)).cast("string").alias("note_id"),
             F.lit("2026-11-25").alias("dt"), F.col("id").alias("version"),
             # A seed must be a constant (Spark 4 refuses rand(i) in a lambda): the floats
             # are the row's hash per position, scaled into [-1, 1].
             F.expr("transform(sequence(1, 64), i -> cast(hash(id, i) / 2147483648.0 "
                    "as float))")
             .alias("embedding"))
     .write.format("delta").mode("overwrite").save(table))
    mark("scale_write", started)
    started = time.time() - T0
    newest = Window.partitionBy("note_id").orderBy(F.col("version").desc())
    latest_df = (spark.read.format("delta").load(table)
                 .withColumn("rank", F.row_number().over(newest)).where("rank = 1"))
    pairs = latest_df.alias("a").join(latest_df.alias("b"), "note_id").agg(
        F.count(F.lit(1)), F.sum(F.col("a.embedding")[0] * F.col("b.embedding")[0])).first()
    mark("scale_read_window_join", started)
    EVENTS.append(("scale_rows", 0.0, float(pairs[0]), 1))
    spark.stop()
    return 0


def main(argv: list[str]) -> int:
    mode, *rest = argv
    try:
        if mode == "job":
            return run_job(rest[0], rest[1:])
        if mode == "session":
            return run_session()
        if mode == "ladder":
            return run_ladder(*rest)
        if mode == "scale":
            return run_scale(*rest)
        raise SystemExit(f"unknown mode {mode}")
    finally:
        if os.environ.get("OVERHEAD_PHASES"):
            with open(os.environ["OVERHEAD_PHASES"], "w") as out:
                json.dump(EVENTS, out)


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
