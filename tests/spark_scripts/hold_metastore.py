"""A Spark process that keeps its session (and its metastore connection) open while another
process uses the same metastore: creates `held.notes`, prints READY, waits for the file
argv[2], then prints the databases it sees (JSON) and exits.

    python hold_metastore.py TABLE_DIR GO_FILE
"""

import json
import sys
import time
from pathlib import Path

from notellm2_udf.spark.session import SparkSettings, build_spark_session

table_dir, go_file = sys.argv[1], Path(sys.argv[2])
spark = build_spark_session(SparkSettings(app_name="hold-metastore", master="local[1]",
                                          overrides={"spark.ui.enabled": "false"}))
spark.sql("CREATE DATABASE IF NOT EXISTS held")
spark.createDataFrame([(1, "a"), (2, "b")], "id INT, s STRING").write.format("delta") \
    .mode("overwrite").save(table_dir)
spark.sql(f"CREATE TABLE IF NOT EXISTS held.notes USING DELTA LOCATION '{table_dir}'")
print("READY", flush=True)
deadline = time.monotonic() + 600
while not go_file.exists() and time.monotonic() < deadline:
    time.sleep(0.5)
databases = sorted(row[0] for row in spark.sql("SHOW DATABASES").collect())
print("DATABASES " + json.dumps(databases), flush=True)
spark.stop()
