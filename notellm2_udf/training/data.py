"""The one module that knows petastorm: numbered pair rows (Spark) -> batches of model inputs
(PyTorch), through `make_spark_converter` -> `make_torch_dataloader`.

Petastorm's torch loader collates numeric arrays only, so images are decoded and notes
tokenised inside the TransformSpec function, on the loader's worker thread, into fixed-shape
arrays: each row is one pair, every field has a leading axis of 2 (first note, partner).
Determinism: each process reads its own dataset in order (files of ascending `position`
ranges, read in name order: no row-group shuffle, no shuffling queue, one reader worker by
default), so a run's batches depend only on the Spark-side numbering (pairs.number_epoch).
Replacing petastorm touches this file only.
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import pandas as pd

from notellm2_udf.model.images import DEFAULT_MAX_PIXELS
from notellm2_udf.training.pairs import NOTE_FIELDS, SIDES

LOADER_FIELDS = ("input_ids", "lengths", "embedding_positions", "visual_positions",
                 "has_image", "pixel_values")


@dataclass(frozen=True)
class LoaderSettings:
    """What a training process needs to turn stored pair rows into batches (picklable)."""

    model_dir: str
    batch_pairs: int
    seed: int = 0
    epoch: int = 0
    flip_images: bool = True  # the paper's random horizontal flip, seeded per (epoch, note)
    max_image_pixels: int = DEFAULT_MAX_PIXELS
    reader_workers: int = 1  # > 1 decodes in parallel but makes the batch order vary


def make_rank_converters(numbered_df, processes: int, cache_dir_url: str) -> list:
    """One petastorm converter per process, each Parquet files of `position` ranges in
    file-name order, written in parallel (one per core of the cluster).

    Runs on the driver (it writes through Spark). `cache_dir_url` is a directory URL that
    every training process can read (file:///... locally, a shared store on a cluster).
    """
    from petastorm.spark import SparkDatasetConverter, make_spark_converter

    spark = numbered_df.sparkSession
    spark.conf.set(SparkDatasetConverter.PARENT_CACHE_DIR_URL_CONF, cache_dir_url)
    columns = ["position"] + [f"{side}_{name}" for side in SIDES for name in NOTE_FIELDS]
    files = spark.sparkContext.defaultParallelism
    converters = []
    for rank in range(processes):
        rank_df = (numbered_df.where(numbered_df["rank"] == rank).select(*columns)
                   .repartitionByRange(files, "position").sortWithinPartitions("position"))
        converter = make_spark_converter(rank_df)
        # petastorm reads the files in the order it listed them (the file system's); by name
        # they are in `position` order (part-00000 holds the first range).
        converter.file_urls = sorted(converter.file_urls)
        converters.append(converter)
    return converters


@contextmanager
def open_batches(converter, settings: LoaderSettings) -> Iterator[Iterator[dict]]:
    """Yields an iterator of petastorm batches: tensors [batch_pairs, 2, ...] plus `position`."""
    from petastorm import TransformSpec

    processor = _processor(settings.model_dir)
    max_length = prompt_length_cap(processor)
    size = processor.image_size
    edit_fields = [
        ("input_ids", np.int64, (2, max_length), False),
        ("lengths", np.int64, (2,), False),
        ("embedding_positions", np.int64, (2,), False),
        ("visual_positions", np.int64, (2,), False),
        ("has_image", np.int64, (2,), False),
        ("pixel_values", np.float32, (2, 3, size, size), False),
    ]
    spec = TransformSpec(lambda pdf: encode_pair_rows(pdf, settings, max_length),
                         edit_fields=edit_fields,
                         selected_fields=["position", *LOADER_FIELDS])
    with converter.make_torch_dataloader(
            batch_size=settings.batch_pairs, num_epochs=1, workers_count=settings.reader_workers,
            shuffling_queue_capacity=0, shuffle_row_groups=False, transform_spec=spec) as loader:
        yield iter(loader)


def encode_pair_rows(pdf: pd.DataFrame, settings: LoaderSettings, max_length: int) -> pd.DataFrame:
    """The TransformSpec function: pair rows with a_*/b_* note fields -> fixed-shape arrays."""
    processor = _processor(settings.model_dir)
    size = processor.image_size
    n = len(pdf)
    arrays = {
        "input_ids": np.full((n, 2, max_length), processor.config.pad_token_id, np.int64),
        "lengths": np.zeros((n, 2), np.int64),
        "embedding_positions": np.zeros((n, 2), np.int64),
        "visual_positions": np.zeros((n, 2), np.int64),
        "has_image": np.zeros((n, 2), np.int64),
        "pixel_values": np.zeros((n, 2, 3, size, size), np.float32),
    }
    for column, side in enumerate(SIDES):
        notes_pdf = pd.DataFrame({name: pdf[f"{side}_{name}"] for name in NOTE_FIELDS})
        notes_pdf["topics"] = [json.loads(t) if isinstance(t, str) else None
                               for t in notes_pdf["topics"]]
        notes = processor.prepare_notes(notes_pdf, max_image_pixels=settings.max_image_pixels)
        for row, ids in enumerate(notes.input_ids):
            arrays["input_ids"][row, column, :len(ids)] = ids
        arrays["lengths"][:, column] = notes.lengths
        arrays["embedding_positions"][:, column] = notes.embedding_positions
        arrays["visual_positions"][:, column] = notes.visual_positions
        # Under missing_image="zero_image" every note has an image: zeros when it lacks one.
        arrays["has_image"][:, column] = notes.image_ok | processor.config.zero_image_for_missing
        pixels = processor.pixels.normalize(notes.pixel_values).numpy()
        for row in np.flatnonzero(notes.image_ok):
            image = pixels[notes.image_index[row]]
            flip = settings.flip_images and _flip(settings, notes_pdf["note_id"].iloc[row])
            arrays["pixel_values"][row, column] = image[..., ::-1] if flip else image
    out = pd.DataFrame({"position": pdf["position"].to_numpy()})
    for name, array in arrays.items():
        out[name] = list(array)
    return out


def model_inputs(batch: dict) -> dict:
    """A petastorm batch of B pairs -> NoteLLM2Model inputs for 2B notes laid out as
    [first notes; partners] (loss.pair_partners), padded to the batch's longest prompt."""
    def notes_first(tensor):
        return tensor.transpose(0, 1).reshape(-1, *tensor.shape[2:])

    lengths = notes_first(batch["lengths"])
    has_image = notes_first(batch["has_image"]).bool()
    return {
        "input_ids": notes_first(batch["input_ids"])[:, :int(lengths.max())],
        "embedding_positions": notes_first(batch["embedding_positions"]),
        "visual_positions": notes_first(batch["visual_positions"]),
        "has_image": has_image,
        "pixel_values": notes_first(batch["pixel_values"])[has_image],
    }


def prompt_length_cap(processor) -> int:
    """The longest prompt the processor can produce (authors: max_text_tokens + the suffix
    + num_query_tokens - 1)."""
    return processor.prompt.max_prompt_tokens


def _flip(settings: LoaderSettings, note_id: str) -> bool:
    return zlib.crc32(f"{settings.seed}:{settings.epoch}:{note_id}".encode()) % 2 == 1


_PROCESSORS: dict[str, object] = {}


def _processor(model_dir: str):
    """One processor per model directory and process (tokenizer files are read once)."""
    if model_dir not in _PROCESSORS:
        from notellm2_udf.model.processor import NoteLLM2Processor

        _PROCESSORS[model_dir] = NoteLLM2Processor.from_pretrained(model_dir)
    return _PROCESSORS[model_dir]
