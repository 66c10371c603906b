"""Preparing notes (decoding images, tokenising) in worker processes instead of threads.

Why processes: with threads, the decoding threads and the thread that launches the GPU's
kernels share one interpreter lock. On the 16-core H100 host the whole path reached 315
notes/s where preparation alone did 724 and the model alone 729 (docs/BENCHMARKS.md);
worker processes hold their own interpreter. The cost: notes and prepared pixels are
copied between processes (about 0.3 MB a note), and each worker loads the tokenizer and
the image processor once (no weights).
"""

from __future__ import annotations

import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from notellm2_udf.inference.settings import EncoderSettings
from notellm2_udf.model.processor import NoteLLM2Processor, PreparedNotes

# The columns a worker needs: the rest of a notes frame (ids, dates) stays in the parent.
_NOTE_FIELDS = ["title", "content", "topics", "image"]
# Set in each worker process by its initializer: the processor of the checkpoint.
_WORKER_PROCESSOR: dict[str, NoteLLM2Processor] = {}


class ProcessPreparer:
    """`prepare(frame)` = `processor.prepare_notes(frame)`, split over the settings'
    `prepare_processes` workers.

    Workers are started with "spawn" (never fork a process that holds CUDA) on first use and
    live until `close()`.
    """

    def __init__(self, model_dir: str | Path, settings: EncoderSettings):
        self.model_dir, self.processes = str(model_dir), settings.prepare_processes
        self.options = ({"missing_image": settings.missing_image} if settings.missing_image
                        else {})
        self.max_image_pixels = settings.max_image_pixels
        self._pool: ProcessPoolExecutor | None = None

    def prepare(self, frame: pd.DataFrame) -> PreparedNotes:
        if frame.empty:
            raise ValueError("no notes to prepare: the frame is empty")
        if self._pool is None:
            self._pool = ProcessPoolExecutor(
                self.processes, mp_context=multiprocessing.get_context("spawn"),
                initializer=_load_processor, initargs=(self.model_dir, self.options))
        fields = frame[[c for c in _NOTE_FIELDS if c in frame.columns]]
        bounds = np.linspace(0, len(frame), self.processes + 1).astype(int)
        slices = [fields.iloc[a:b] for a, b in zip(bounds, bounds[1:]) if b > a]
        parts = self._pool.map(_prepare_slice, slices, [self.max_image_pixels] * len(slices))
        return merge_prepared([_from_worker(part) for part in parts])

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(cancel_futures=True)
            self._pool = None


def merge_prepared(parts: list[PreparedNotes]) -> PreparedNotes:
    """Consecutive slices' PreparedNotes -> the PreparedNotes of the whole frame."""
    offsets = np.cumsum([0] + [part.pixel_values.shape[0] for part in parts[:-1]])
    return PreparedNotes(
        input_ids=[ids for part in parts for ids in part.input_ids],
        lengths=np.concatenate([part.lengths for part in parts]),
        embedding_positions=np.concatenate([part.embedding_positions for part in parts]),
        visual_positions=np.concatenate([part.visual_positions for part in parts]),
        image_ok=np.concatenate([part.image_ok for part in parts]),
        text_ok=np.concatenate([part.text_ok for part in parts]),
        image_error=[error for part in parts for error in part.image_error],
        text_error=[error for part in parts for error in part.text_error],
        pixel_values=torch.cat([part.pixel_values for part in parts]),
        image_index=np.concatenate([
            np.where(part.image_index >= 0, part.image_index + offset, -1)
            for part, offset in zip(parts, offsets)]),
    )


def _load_processor(model_dir: str, options: dict) -> None:
    torch.set_num_threads(1)
    processor = NoteLLM2Processor.from_pretrained(model_dir)
    _WORKER_PROCESSOR["processor"] = processor.with_options(**options) if options else processor


def _prepare_slice(fields: pd.DataFrame, max_image_pixels: int) -> PreparedNotes:
    notes = _WORKER_PROCESSOR["processor"].prepare_notes(fields, max_image_pixels=max_image_pixels)
    # A numpy array pickles by value; a tensor would travel through shared-memory handles.
    return replace(notes, pixel_values=notes.pixel_values.numpy())


def _from_worker(notes: PreparedNotes) -> PreparedNotes:
    return replace(notes, pixel_values=torch.from_numpy(notes.pixel_values))
