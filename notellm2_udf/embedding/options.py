"""How the embedding jobs (embed_notes, embed_window) batch and encode notes: their shared
settings (declared once, flags included) and what those settings set on Spark."""

from __future__ import annotations

from dataclasses import dataclass

from pyspark.sql import SparkSession

from notellm2_udf.inference.settings import EncoderSettings
from notellm2_udf.settings.declared import option
from notellm2_udf.settings.values import positive_int_arg

DEFAULT_BATCH_SIZE = 512
# An Arrow batch carries the notes' encoded images: 512 notes of 20 MB screenshots would be
# 10 GB in one Python worker. Spark cuts a batch at whichever limit comes first.
DEFAULT_BATCH_BYTES = 64 << 20


@dataclass(frozen=True)
class EncodeOptions:
    """Arrow batching and encoding tasks, and the encoder's own settings (handed to every
    executor as they are)."""

    batch_size: int = option(DEFAULT_BATCH_SIZE, parse=positive_int_arg,
                             help="notes per Arrow batch handed to the encoder; the encoder "
                                  "sorts and re-batches them by a token budget")
    batch_bytes: int = option(DEFAULT_BATCH_BYTES, parse=positive_int_arg,
                              help="bytes per Arrow batch at most, images included; a batch "
                                   "ends at whichever of --batch-size and --batch-bytes comes "
                                   "first")
    partitions: int | None = option(None, parse=positive_int_arg,
                                    help="encoding tasks (default: 4 x the default "
                                         "parallelism, so the last wave of tasks leaves few "
                                         "slots idle)")
    encoder: EncoderSettings = EncoderSettings()

    def configure(self, spark: SparkSession) -> int:
        """Set the session's Arrow batch limits; returns the number of encoding tasks."""
        spark.conf.set("spark.sql.execution.arrow.maxRecordsPerBatch", str(self.batch_size))
        spark.conf.set("spark.sql.execution.arrow.maxBytesPerBatch", str(self.batch_bytes))
        # 4 x the parallelism, so the last wave of tasks leaves few slots idle.
        return self.partitions or 4 * spark.sparkContext.defaultParallelism
