"""The executor side of the embedding job: a mapInPandas function around `Encoder`.

Why mapInPandas: one pass gives several outputs per note (two embeddings, image status,
the reason an image was refused), and the function controls model loading and batching
itself. The model is loaded once per Python worker and cached in this module; with
`spark.python.worker.reuse=true` (Spark's default) a worker serves every task of its
executor slot, so an executor loads the model once per task slot. Memory: each slot's
worker holds its own copy of the weights, so size `spark.executor.pyspark.memory` /
memoryOverhead for (task slots x checkpoint size) plus the Arrow batches.

The device comes from the task's resources (`spark.task.resource.gpu.amount=1` and a GPU
discovery script on the cluster); with no GPU assigned the CPU is used, with torch's
threads (and the encoder's image-decoding threads) set to the task's CPUs (`spark.task.cpus`)
so concurrent tasks do not oversubscribe; on a GPU those CPUs decode images for it.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Iterator

import pandas as pd
from pyspark.sql import types as T

from notellm2_udf.files.worker_cache import MODELS
from notellm2_udf.inference.settings import EncoderSettings
from notellm2_udf.log_setup import configure_logging
from notellm2_udf.registry.versions import PinnedModel
from notellm2_udf.spark.executor_resources import task_cpus, task_device

log = logging.getLogger("notellm2.embed_udf")

ENCODED_SCHEMA = T.StructType([
    T.StructField("dt", T.StringType(), True),
    T.StructField("note_id", T.StringType(), True),
    T.StructField("embedding", T.ArrayType(T.FloatType()), True),
    T.StructField("visual_embedding", T.ArrayType(T.FloatType()), True),
    T.StructField("image_ok", T.BooleanType(), False),
    T.StructField("image_error", T.StringType(), True),
    T.StructField("has_content", T.BooleanType(), False),
    T.StructField("text_error", T.StringType(), True),
    T.StructField("model_error", T.StringType(), True),
    T.StructField("model_version", T.StringType(), False),
    # Which Python worker encoded the row and how many times it had loaded a model by then:
    # operations evidence that the model is loaded once per worker.
    T.StructField("worker_pid", T.IntegerType(), False),
    T.StructField("worker_model_loads", T.IntegerType(), False),
    # The row's share of its Arrow batch's seconds waiting for prepared inputs and encoding:
    # summed over the day they say whether preparation or the model set the pace.
    T.StructField("input_wait_s", T.DoubleType(), False),
    T.StructField("encode_s", T.DoubleType(), False),
])


def load_encoder(model: PinnedModel, settings: EncoderSettings, device: str):
    """The default factory: a real Encoder from the pinned checkpoint directory."""
    from transformers.utils import logging as transformers_logging

    from notellm2_udf.files.remote_files import local_copy
    from notellm2_udf.inference.encoder import Encoder

    # Progress bars of weight loading would fill the executor logs of every worker.
    transformers_logging.disable_progress_bar()
    # A URI (hdfs://, s3a://, file://) is copied to this machine's cache once per version.
    return Encoder(local_copy(model.dir), device, settings)


Factory = Callable[[PinnedModel, EncoderSettings, str], object]


def cached_encoder(model: PinnedModel, settings: EncoderSettings, device: str,
                   factory: Factory = load_encoder):
    """The worker's Encoder for (model, settings, device, factory), loaded on first use."""
    # By name: a factory arrives unpickled anew with every task.
    key = (model, settings, device, f"{factory.__module__}.{factory.__qualname__}")
    return MODELS.get(key, lambda: factory(model, settings, device))


def make_encode_partition(
    model: PinnedModel, settings: EncoderSettings, factory: Factory = load_encoder,
) -> Callable[[Iterator[pd.DataFrame]], Iterator[pd.DataFrame]]:
    """The function for `notes_df.mapInPandas(fn, ENCODED_SCHEMA)`: `model` encodes, as
    `settings` say, on the task's device.

    Input batches carry the `notes` columns; output rows follow input rows one to one. A
    worker whose checkpoint hashes to another version than the one the driver pinned
    refuses to encode (the directory was changed under the run).
    """

    def encode_partition(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        import torch

        configure_logging()
        # Also on a GPU: the task's CPUs decode images and run torch's host-side work.
        torch.set_num_threads(task_cpus())
        encoder = cached_encoder(model, settings, task_device(), factory)
        if encoder.model_version != model.version:
            raise RuntimeError(f"{model.dir} is model {encoder.model_version}, the run was "
                               f"pinned to {model.version}")
        started = time.monotonic()
        for notes_pdf, result in encoder.encode_frames(batches):
            yield _encoded_frame(notes_pdf, result, encoder.model_version)
            log.info("encoded %d notes in %.2fs", len(notes_pdf), time.monotonic() - started)
            started = time.monotonic()

    return encode_partition


def _encoded_frame(notes_pdf: pd.DataFrame, result, model_version: str) -> pd.DataFrame:
    embeddings = list(result.embeddings)
    visual = [vector if ok else None for vector, ok in
              zip(result.visual_embeddings, result.image_ok)]
    return pd.DataFrame({
        "dt": notes_pdf["dt"].to_numpy(),
        "note_id": notes_pdf["note_id"].to_numpy(),
        "embedding": [vector if ok else None for vector, ok in
                      zip(embeddings, result.embedded)],
        "visual_embedding": visual,
        "image_ok": result.image_ok,
        "image_error": result.image_error,
        "has_content": result.has_content,
        "text_error": result.text_error,
        "model_error": result.model_error,
        "model_version": model_version,
        "worker_pid": os.getpid(),
        "worker_model_loads": MODELS.loads,
        "input_wait_s": result.input_wait_s / max(len(notes_pdf), 1),
        "encode_s": result.encode_s / max(len(notes_pdf), 1),
    })
