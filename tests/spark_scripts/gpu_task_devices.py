"""Run with the venv's python: which device the UDF picks per task when Spark schedules
(fake) GPUs. argv: the discovery script. Prints one JSON line of the devices tasks saw."""

import json
import sys

from notellm2_udf.spark.executor_resources import task_device
from notellm2_udf.spark.session import SparkSettings, build_spark_session

discovery = sys.argv[1]
spark = build_spark_session(SparkSettings(
    app_name="gpu-task-devices", master="local-cluster[1,2,1024]",
    overrides={
        "spark.ui.enabled": "false",
        "spark.worker.resource.gpu.amount": "2",
        "spark.worker.resource.gpu.discoveryScript": discovery,
        "spark.executor.resource.gpu.amount": "2",
        "spark.executor.resource.gpu.discoveryScript": discovery,
        "spark.task.resource.gpu.amount": "1",
    }))
devices = (spark.sparkContext.parallelize(range(2), 2)
           .mapPartitions(lambda _: [task_device()]).collect())
print("RESULT " + json.dumps(sorted(devices)))
spark.stop()
