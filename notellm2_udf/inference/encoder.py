"""Batch encoding of `notes` rows with a NoteLLM-2 checkpoint: what the Spark UDF calls.

An executor builds one Encoder from a checkpoint directory (no pickled state) and streams
its Arrow batches through `encode_frames`. The Encoder leaves torch's thread settings to its
caller.
"""

from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from notellm2_udf.inference.preparation import ProcessPreparer
from notellm2_udf.model.checkpoint import load_checkpoint
from notellm2_udf.model.images import DEFAULT_MAX_PIXELS
from notellm2_udf.model.processor import PreparedNotes
from notellm2_udf.model.version import model_version

# Tokens (rows x longest row) per forward pass. A 7B-class LLM in bf16 on an 80 GB GPU
# handles 16k-token batches comfortably; on a CPU smaller batches waste less on padding.
DEFAULT_BATCH_TOKENS = {"cuda": 16384, "cpu": 4096}
# Notes prepared (images decoded and resized) at a time: bounds the pixel memory
# (1024 x 3 x 224 x 224 uint8 = 150 MB, two chunks in flight) while still sorting enough
# notes by length.
DEFAULT_CHUNK_ROWS = 1024


@dataclass
class EncodeResult:
    """Per-row results of `Encoder.encode_detailed` for n input rows, in input order.

    embeddings: [n, embed_dim] float32, unit norm; all zeros where `has_content` is False.
    visual_embeddings: [n, embed_dim] float32, unit norm; zeros where `has_content` is False.
    image_ok: [n] bool, False when the image was missing or refused.
    image_error: n entries, the reason an image that was present was refused, else None.
    text_ok: [n] bool, False when title, topics and content are all empty.
    has_content: [n] bool = image_ok | text_ok. Rows without content are not encoded.
    """

    embeddings: np.ndarray
    visual_embeddings: np.ndarray
    image_ok: np.ndarray
    image_error: list[str | None]
    text_ok: np.ndarray
    has_content: np.ndarray


def token_budget_batches(lengths: np.ndarray, batch_tokens: int) -> list[np.ndarray]:
    """Indices into `lengths`, longest first, grouped so that rows x longest <= batch_tokens
    (a row longer than the budget goes alone)."""
    order = np.argsort(-lengths, kind="stable")
    batches, start = [], 0
    while start < len(order):
        # Sorted descending, so the first row of a batch is its longest.
        rows = max(1, batch_tokens // int(lengths[order[start]]))
        batches.append(order[start:start + rows])
        start += rows
    return batches


def resolve_device(device: str | torch.device) -> torch.device:
    if str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


class Encoder:
    """`Encoder(model_dir).encode(notes_pdf) -> (embeddings, visual_embeddings)`.

    device "auto" takes the GPU when there is one: bf16 and SDPA there, fp32 on a CPU
    (where results are deterministic). Rows are sorted by prompt length and batched by a
    token budget; outputs come back in input order and a row's embedding does not depend
    on the rows batched with it (right padding, no cross-row attention).

    CPU work overlaps the model: while chunk k is encoded, chunk k + 1 is prepared, its
    images decoded and resized by `threads` threads (default: torch's intra-op threads, which
    the caller sets to the CPUs it owns), or, with `prepare_processes=N`, by N worker
    processes (no interpreter lock shared with the thread driving the GPU; `close()` stops
    them). `compile=True` compiles the vision tower and the LLM with torch.compile (dynamic
    shapes): slower first batches, faster steady state.
    """

    def __init__(
        self,
        model_dir: str | Path,
        device: str | torch.device = "auto",
        *,
        batch_tokens: int | None = None,
        max_image_pixels: int = DEFAULT_MAX_PIXELS,
        chunk_rows: int = DEFAULT_CHUNK_ROWS,
        threads: int | None = None,
        prepare_processes: int = 0,
        compile: bool = False,
    ):
        self.device = resolve_device(device)
        dtype = torch.bfloat16 if self.device.type == "cuda" else torch.float32
        self.model, self.processor = load_checkpoint(model_dir, device=self.device, dtype=dtype)
        if compile:
            compile_model(self.model)
        self.model_version = model_version(model_dir)
        self.batch_tokens = batch_tokens or DEFAULT_BATCH_TOKENS.get(self.device.type, 4096)
        self.max_image_pixels = max_image_pixels
        self.chunk_rows = chunk_rows
        self.threads = threads or torch.get_num_threads()
        self._preparer = (ProcessPreparer(model_dir, prepare_processes, max_image_pixels)
                          if prepare_processes else None)

    @property
    def embed_dim(self) -> int:
        return self.model.config.embed_dim

    def encode(self, notes_pdf: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        """`notes` rows -> (embeddings, visual_embeddings), each [rows, embed_dim] float32."""
        result = self.encode_detailed(notes_pdf)
        return result.embeddings, result.visual_embeddings

    def encode_detailed(self, notes_pdf: pd.DataFrame) -> EncodeResult:
        """`notes` rows -> EncodeResult, in input order."""
        return next(self.encode_frames([notes_pdf]))[1]

    def encode_frames(
        self, frames: Iterable[pd.DataFrame]
    ) -> Iterator[tuple[pd.DataFrame, EncodeResult]]:
        """(frame, its EncodeResult) for each frame, in order, reading one chunk ahead.

        Chunks of up to `chunk_rows` notes are prepared (images decoded, text tokenised) in
        the background while the chunk before is encoded, across frame boundaries: the GPU
        does not wait for image decoding between Arrow batches.
        """
        with ThreadPoolExecutor(self.threads) as decoders, ThreadPoolExecutor(1) as prefetch:
            in_flight: deque[tuple[_FrameResult, Future | None]] = deque()
            for frame in frames:
                result = _FrameResult(frame, self.embed_dim)
                for start in range(0, len(frame), self.chunk_rows):
                    in_flight.append((result, prefetch.submit(
                        self._prepare, frame.iloc[start:start + self.chunk_rows], decoders)))
                    yield from self._encode_oldest(in_flight, keep=1)
                if len(frame) == 0:
                    in_flight.append((result, None))
            yield from self._encode_oldest(in_flight, keep=0)

    def close(self) -> None:
        """Stops the preparation processes, if any (threads end with each call)."""
        if self._preparer is not None:
            self._preparer.close()

    def _prepare(self, chunk: pd.DataFrame, decoders: ThreadPoolExecutor) -> PreparedNotes:
        if self._preparer is not None:
            return self._preparer.prepare(chunk)
        return self.processor.prepare_notes(chunk, max_image_pixels=self.max_image_pixels,
                                            executor=decoders)

    def _encode_oldest(
        self, in_flight: deque, keep: int
    ) -> Iterator[tuple[pd.DataFrame, EncodeResult]]:
        """Encodes queued chunks until `keep` remain; yields the frames they complete."""
        while len(in_flight) > keep:
            result, future = in_flight.popleft()
            if future is not None:
                notes = future.result()
                result.add(notes, *self._encode_prepared(notes))
            if result.complete:
                yield result.frame, result.finish()

    def _encode_prepared(self, notes: PreparedNotes) -> tuple[np.ndarray, np.ndarray]:
        """Embeddings of one prepared chunk; zeros for rows without content."""
        shape = (len(notes.lengths), self.embed_dim)
        embeddings = torch.zeros(shape, dtype=torch.float32, device=self.device)
        visual_embeddings = torch.zeros(shape, dtype=torch.float32, device=self.device)
        encodable = np.flatnonzero(notes.has_content)
        # Results stay on the device until the chunk is done: copying each batch back would
        # make the host wait for the GPU before it can collate the next batch.
        with torch.inference_mode():
            for batch in token_budget_batches(notes.lengths[encodable], self.batch_tokens):
                rows = torch.from_numpy(encodable[batch]).to(self.device)
                output = self.model(**self.processor.collate(notes, encodable[batch], self.device))
                embeddings[rows] = output.embedding
                visual_embeddings[rows] = output.visual_embedding
        return embeddings.cpu().numpy(), visual_embeddings.cpu().numpy()


class _FrameResult:
    """An EncodeResult being filled chunk by chunk, in row order."""

    def __init__(self, frame: pd.DataFrame, embed_dim: int):
        n = len(frame)
        self.frame, self.filled = frame, 0
        self.embeddings = np.zeros((n, embed_dim), dtype=np.float32)
        self.visual_embeddings = np.zeros((n, embed_dim), dtype=np.float32)
        self.image_ok, self.text_ok = np.zeros(n, dtype=bool), np.zeros(n, dtype=bool)
        self.image_error: list[str | None] = []

    @property
    def complete(self) -> bool:
        return self.filled == len(self.frame)

    def add(self, notes: PreparedNotes, embeddings: np.ndarray, visual: np.ndarray) -> None:
        rows = slice(self.filled, self.filled + len(notes.lengths))
        self.embeddings[rows], self.visual_embeddings[rows] = embeddings, visual
        self.image_ok[rows], self.text_ok[rows] = notes.image_ok, notes.text_ok
        self.image_error.extend(notes.image_error)
        self.filled = rows.stop

    def finish(self) -> EncodeResult:
        return EncodeResult(
            embeddings=self.embeddings,
            visual_embeddings=self.visual_embeddings,
            image_ok=self.image_ok,
            image_error=self.image_error,
            text_ok=self.text_ok,
            has_content=self.image_ok | self.text_ok,
        )


def compile_model(model: torch.nn.Module) -> None:
    """torch.compile the vision tower and the LLM in place (state-dict keys unchanged).

    Dynamic shapes: batches vary in rows and length, and one graph serves them all.
    """
    for module in (model.vision_tower, model.language_model):
        module.compile(dynamic=True)
