"""How the embedding jobs (embed_notes, embed_window) batch and encode notes: their shared
flags, the settings those flags make, and what the settings set on Spark."""

from __future__ import annotations

import argparse
from dataclasses import dataclass

from pyspark.sql import SparkSession

from notellm2_udf.embedding.udf import EncoderSettings
from notellm2_udf.inference import IMAGE_DECODES
from notellm2_udf.job.args import positive_int_arg
from notellm2_udf.model.images import DEFAULT_MAX_PIXELS
from notellm2_udf.registry.versions import PinnedModel

DEFAULT_BATCH_SIZE = 512
# An Arrow batch carries the notes' encoded images: 512 notes of 20 MB screenshots would be
# 10 GB in one Python worker. Spark cuts a batch at whichever limit comes first.
DEFAULT_BATCH_BYTES = 64 << 20


@dataclass(frozen=True)
class EncodeOptions:
    """Arrow batching, encoding tasks and the encoder's own settings."""

    batch_size: int = DEFAULT_BATCH_SIZE
    batch_bytes: int = DEFAULT_BATCH_BYTES
    batch_tokens: int | None = None
    partitions: int | None = None
    max_image_pixels: int = DEFAULT_MAX_PIXELS
    compile: bool = False
    prepare_processes: int = 0
    image_decode: str = "auto"

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> EncodeOptions:
        return cls(batch_size=args.batch_size, batch_bytes=args.batch_bytes,
                   batch_tokens=args.batch_tokens, partitions=args.partitions,
                   max_image_pixels=args.max_image_pixels, compile=args.compile,
                   prepare_processes=args.prepare_processes or 0,
                   image_decode=args.image_decode)

    def encoder(self, model: PinnedModel) -> EncoderSettings:
        return EncoderSettings(model.dir, self.max_image_pixels, self.batch_tokens,
                               compile=self.compile, prepare_processes=self.prepare_processes,
                               image_decode=self.image_decode, model_version=model.version)

    def configure(self, spark: SparkSession) -> int:
        """Set the session's Arrow batch limits; returns the number of encoding tasks."""
        spark.conf.set("spark.sql.execution.arrow.maxRecordsPerBatch", str(self.batch_size))
        spark.conf.set("spark.sql.execution.arrow.maxBytesPerBatch", str(self.batch_bytes))
        # 4 x the parallelism, so the last wave of tasks leaves few slots idle.
        return self.partitions or 4 * spark.sparkContext.defaultParallelism


def add_encode_arguments(parser: argparse.ArgumentParser) -> None:
    """The flags of EncodeOptions."""
    parser.add_argument("--batch-size", type=positive_int_arg, default=DEFAULT_BATCH_SIZE,
                        help="notes per Arrow batch handed to the encoder "
                             f"(default {DEFAULT_BATCH_SIZE}); the encoder sorts and "
                             "re-batches them by a token budget")
    parser.add_argument("--batch-bytes", type=positive_int_arg, default=DEFAULT_BATCH_BYTES,
                        help="bytes per Arrow batch at most, images included (default "
                             f"{DEFAULT_BATCH_BYTES}); a batch ends at whichever of "
                             "--batch-size and --batch-bytes comes first")
    parser.add_argument("--batch-tokens", type=positive_int_arg, default=None,
                        help="token budget of one forward pass (default: the encoder's, "
                             "by device)")
    parser.add_argument("--partitions", type=positive_int_arg, default=None,
                        help="encoding tasks (default: 4 x the default parallelism, so the "
                             "last wave of tasks leaves few slots idle)")
    parser.add_argument("--max-image-pixels", type=positive_int_arg,
                        default=DEFAULT_MAX_PIXELS,
                        help="images with more pixels are refused before decoding "
                             f"(default {DEFAULT_MAX_PIXELS})")
    parser.add_argument("--compile", action="store_true",
                        help="torch.compile the model on each worker: about a minute more per "
                             "worker at start, faster encoding after (see docs/BENCHMARKS.md)")
    parser.add_argument("--prepare-processes", type=positive_int_arg, default=None,
                        help="decode images and tokenise in N worker processes per encoding "
                             "task instead of threads (default: threads, one per task CPU)")
    parser.add_argument("--image-decode", choices=IMAGE_DECODES, default="auto",
                        help="where JPEGs are decoded and resized: gpu (nvJPEG on the task's "
                             "GPU; other formats and rejected JPEGs fall back to the CPU note "
                             "by note), cpu (Pillow), auto (gpu when the task has one; default)")
