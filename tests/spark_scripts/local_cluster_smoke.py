"""Run with the venv's python: two executor JVMs, each with its own Python workers.

Prints one JSON line: the worker process ids that ran tasks and the rows read back from a
Delta table written by the executors.
"""

import json
import os
import sys

from notellm2_udf.spark.session import SparkSettings, build_spark_session

table = sys.argv[1]
spark = build_spark_session(SparkSettings(
    app_name="local-cluster-smoke", master="local-cluster[2,1,1024]",
    overrides={"spark.ui.enabled": "false"}))


def tag_partition(rows):
    from pyspark import TaskContext

    for value in rows:
        yield (value, value * value, os.getpid(), TaskContext.get().partitionId())


tagged = spark.sparkContext.parallelize(range(8), 4).mapPartitions(tag_partition).collect()
df = spark.createDataFrame([(v, sq) for v, sq, _, _ in tagged], "value int, square int")
df.repartition(2).write.format("delta").mode("overwrite").save(table)
read_back = sorted(tuple(r) for r in spark.read.format("delta").load(table).collect())
executors = spark.sparkContext._jsc.sc().getExecutorMemoryStatus().size() - 1
print("RESULT " + json.dumps({
    "pids": sorted({pid for _, _, pid, _ in tagged}),
    "rows": read_back,
    "executors": executors,
}))
spark.stop()
