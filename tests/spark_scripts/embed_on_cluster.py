"""Run with the venv's python: the embedding UDF on local-cluster[2,1,1024], twice.

argv: notes_location day model_dir marker_path table_path. Prints one JSON line with the
rows of a clean run and of a run whose Python worker is SIGKILLed in the middle of a
partition once (after its first batch), which Spark's task retry must absorb; the number of
executors; and the clean run's ids and flags written to a Delta table by the executors and
read back (the Delta jars reach the executor JVMs).
"""

import json
import os
import signal
import sys
from pathlib import Path

from notellm2_udf.embedding.day import encode_notes
from notellm2_udf.embedding.udf import load_encoder
from notellm2_udf.inference.settings import EncoderSettings
from notellm2_udf.inputs.notes import read_notes_day, split_duplicates
from notellm2_udf.model.version import model_version
from notellm2_udf.registry.versions import PinnedModel
from notellm2_udf.spark.session import SparkSettings, build_spark_session

notes_location, day, model_dir, marker, table = sys.argv[1:6]


class KilledOnSecondBatch:
    """Wraps the real encoder; the first worker to reach its 2nd batch dies (once)."""

    def __init__(self, model, settings, device):
        self.encoder = load_encoder(model, settings, device)
        self.model_version = self.encoder.model_version
        self.calls = 0

    def encode_frames(self, frames):
        for encoded in self.encoder.encode_frames(frames):
            self.calls += 1
            if self.calls == 2 and not Path(marker).exists():
                Path(marker).write_text(str(os.getpid()))
                os.kill(os.getpid(), signal.SIGKILL)
            yield encoded


spark = build_spark_session(SparkSettings(
    app_name="embed-on-cluster", master="local-cluster[2,1,1024]",
    overrides={"spark.ui.enabled": "false", "spark.task.maxFailures": "4",
               "spark.sql.execution.arrow.maxRecordsPerBatch": "8"}))
notes_df, _ = split_duplicates(read_notes_day(spark, notes_location, day))
notes_df = notes_df.repartition(4, "note_id")
model = PinnedModel(version=model_version(model_dir), dir=model_dir)
settings = EncoderSettings(max_image_pixels=40_000_000)
columns = ["note_id", "embedding", "visual_embedding", "image_ok", "worker_pid",
           "worker_model_loads"]
runs = {}
for name, factory in (("clean", load_encoder), ("killed_once", KilledOnSecondBatch)):
    rows = encode_notes(notes_df, model, settings, factory).select(*columns).collect()
    runs[name] = [list(row) for row in sorted(rows, key=lambda row: row.note_id)]
written = spark.createDataFrame([(row[0], row[3]) for row in runs["clean"]],
                                "note_id string, image_ok boolean")
written.repartition(2).write.format("delta").mode("overwrite").save(table)
read_back = sorted([list(row) for row in spark.read.format("delta").load(table).collect()])
executors = spark.sparkContext._jsc.sc().getExecutorMemoryStatus().size() - 1
print("RESULT " + json.dumps({**runs, "killed_pid": int(Path(marker).read_text()),
                              "executors": executors, "delta_rows": read_back}))
spark.stop()
