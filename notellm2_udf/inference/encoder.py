"""Batch encoding of `notes` rows with a NoteLLM-2 checkpoint: what the Spark UDF calls.

An executor builds one Encoder from a checkpoint directory (no pickled state) and streams
its Arrow batches through `encode_frames`. The Encoder leaves torch's thread settings to its
caller.
"""

import time
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from notellm2_udf.errors import describe_error
from notellm2_udf.inference.device_images import DeviceJpegDecoder, device_decoding_available
from notellm2_udf.inference.preparation import ProcessPreparer
from notellm2_udf.inference.settings import DEFAULT_ENCODER_SETTINGS, EncoderSettings
from notellm2_udf.model.checkpoint import load_checkpoint
from notellm2_udf.model.processor import PreparedNotes
from notellm2_udf.model.version import model_version

# Tokens (rows x longest row) per forward pass. A 7B-class LLM in bf16 on an 80 GB GPU
# handles 16k-token batches comfortably; on a CPU smaller batches waste less on padding.
DEFAULT_BATCH_TOKENS = {"cuda": 16384, "cpu": 4096}


@dataclass
class EncodeResult:
    """Per-row results of `Encoder.encode_detailed` for n input rows, in input order.

    embeddings: [n, embed_dim] float32, unit norm; all zeros where `has_content` is False.
    visual_embeddings: [n, embed_dim] float32, unit norm; zeros where `has_content` is False.
    image_ok: [n] bool, False when the image was missing or refused.
    image_error: n entries, the reason an image that was present was refused, else None.
    text_ok: [n] bool, False when title, topics and content are all empty (or unusable).
    text_error: n entries, why a note's text could not be used, else None.
    has_content: [n] bool = image_ok | text_ok. Rows without content are not encoded.
    model_error: n entries, why the model failed on this note alone (it is quarantined:
        embeddings all zeros), else None.
    input_wait_s, encode_s: seconds the encoder waited for prepared inputs, and spent
        encoding, on this frame's chunks (the share of waiting says whether preparation or
        the model sets the pace).
    """

    embeddings: np.ndarray
    visual_embeddings: np.ndarray
    image_ok: np.ndarray
    image_error: list[str | None]
    text_ok: np.ndarray
    has_content: np.ndarray
    text_error: list[str | None]
    model_error: list[str | None]
    input_wait_s: float = 0.0
    encode_s: float = 0.0

    @property
    def embedded(self) -> np.ndarray:
        """[n] bool: rows with an embedding (content, and the model did not fail on them)."""
        return self.has_content & np.asarray([error is None for error in self.model_error],
                                             dtype=bool)


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


def resolve_image_decode(settings: EncoderSettings, device: torch.device) -> str:
    """"cpu" (Pillow in threads or processes) or "gpu" (JPEGs on the model's device).

    "auto" takes "gpu" on a CUDA device when torchvision is installed. "gpu" on a CPU device
    runs the same torchvision path on the CPU (what the tests do)."""
    if settings.image_decode == "auto":
        wanted = (device.type == "cuda" and not settings.prepare_processes
                  and device_decoding_available())
        return "gpu" if wanted else "cpu"
    if settings.image_decode == "gpu" and not device_decoding_available():
        raise ValueError("image_decode='gpu' needs torchvision")
    return settings.image_decode


def resolve_device(device: str | torch.device) -> torch.device:
    if str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


class Encoder:
    """`Encoder(model_dir, device, settings).encode(notes_pdf) -> (embeddings,
    visual_embeddings)`; `settings` (EncoderSettings) says how to batch and prepare.

    device "auto" takes the GPU when there is one: bf16 and SDPA there, fp32 on a CPU
    (where results are deterministic). Rows are sorted by prompt length and batched by a
    token budget; outputs come back in input order and a row's embedding does not depend
    on the rows batched with it (right padding, no cross-row attention).

    CPU work overlaps the model: while chunk k is encoded, chunk k + 1 is prepared, its
    images decoded and resized by threads, or by worker processes (`prepare_processes`: no
    interpreter lock shared with the thread driving the GPU; `close()` stops them).
    `compile` compiles the vision tower and the LLM with torch.compile (dynamic shapes):
    slower first batches, faster steady state. `image_decode` chooses where JPEGs are
    decoded and resized ("auto": on a GPU when there is one).
    """

    def __init__(self, model_dir: str | Path, device: str | torch.device = "auto",
                 settings: EncoderSettings = DEFAULT_ENCODER_SETTINGS):
        self.device = resolve_device(device)
        self.settings = settings
        dtype = torch.bfloat16 if self.device.type == "cuda" else torch.float32
        self.model, self.processor = load_checkpoint(model_dir, device=self.device, dtype=dtype)
        if settings.missing_image:
            self.processor = self.processor.with_options(missing_image=settings.missing_image)
        if settings.compile:
            compile_model(self.model)
        self.model_version = model_version(model_dir)
        self.batch_tokens = (settings.batch_tokens
                             or DEFAULT_BATCH_TOKENS.get(self.device.type, 4096))
        self.max_image_pixels = settings.max_image_pixels
        pixel_bytes = 3 * self.processor.image_size ** 2
        self.chunk_rows = settings.chunk_rows or max(1, settings.chunk_bytes // pixel_bytes)
        self.threads = settings.threads or torch.get_num_threads()
        self._preparer = (ProcessPreparer(model_dir, settings) if settings.prepare_processes
                          else None)
        self.image_decode = resolve_image_decode(settings, self.device)
        self._device_decoder = (
            DeviceJpegDecoder(self.processor.pixels, self.device, self.max_image_pixels)
            if self.image_decode == "gpu" else None)
        # Device decoding runs in the preparing thread on its own CUDA stream, so that it
        # overlaps the model's kernels on the default stream.
        self._decode_stream = (torch.cuda.Stream(self.device)
                               if self._device_decoder and self.device.type == "cuda" else None)

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
        if self._decode_stream is None:
            return self.processor.prepare_notes(chunk, max_image_pixels=self.max_image_pixels,
                                                executor=decoders,
                                                device_decoder=self._device_decoder)
        with torch.cuda.stream(self._decode_stream):
            notes = self.processor.prepare_notes(chunk, max_image_pixels=self.max_image_pixels,
                                                 executor=decoders,
                                                 device_decoder=self._device_decoder)
        self._decode_stream.synchronize()
        return notes

    def _encode_oldest(
        self, in_flight: deque, keep: int
    ) -> Iterator[tuple[pd.DataFrame, EncodeResult]]:
        """Encodes queued chunks until `keep` remain; yields the frames they complete."""
        while len(in_flight) > keep:
            result, future = in_flight.popleft()
            if future is not None:
                waited = time.monotonic()
                notes = future.result()
                started = time.monotonic()
                result.add(notes, *self._encode_prepared(notes))
                result.input_wait_s += started - waited
                result.encode_s += time.monotonic() - started
            if result.complete:
                yield result.frame, result.finish()

    def _encode_prepared(
        self, notes: PreparedNotes
    ) -> tuple[np.ndarray, np.ndarray, list[str | None]]:
        """Embeddings of one prepared chunk (zeros for rows without content) and, per row,
        why the model failed on it alone (None where it did not)."""
        shape = (len(notes.lengths), self.embed_dim)
        embeddings = torch.zeros(shape, dtype=torch.float32, device=self.device)
        visual_embeddings = torch.zeros(shape, dtype=torch.float32, device=self.device)
        model_error: list[str | None] = [None] * len(notes.lengths)
        encodable = np.flatnonzero(notes.has_content)
        if notes.pixel_values.is_cuda:
            # Made on the decoding stream, used on this one: the allocator must not reuse
            # the memory before this stream is done with it.
            notes.pixel_values.record_stream(torch.cuda.current_stream(self.device))
        # Results stay on the device until the chunk is done: copying each batch back would
        # make the host wait for the GPU before it can collate the next batch.
        with torch.inference_mode():
            for batch in token_budget_batches(notes.lengths[encodable], self.batch_tokens):
                for rows, output in self._forward_isolating(notes, encodable[batch],
                                                            model_error):
                    index = torch.from_numpy(rows).to(self.device)
                    embeddings[index] = output.embedding
                    visual_embeddings[index] = output.visual_embedding
        _check_not_systematic(model_error, len(encodable))
        return embeddings.cpu().numpy(), visual_embeddings.cpu().numpy(), model_error

    def _forward_isolating(self, notes: PreparedNotes, rows: np.ndarray,
                           model_error: list[str | None]):
        """(rows, model output) for `rows`; when the forward pass raises, the batch is split
        in halves and retried, down to the single note that makes it fail, whose reason goes
        into model_error. Errors that are no note's fault (out of memory) propagate."""
        try:
            yield rows, self.model(**self.processor.collate(notes, rows, self.device))
        except torch.OutOfMemoryError:
            raise
        except Exception as err:
            if len(rows) == 1:
                model_error[rows[0]] = f"model failed on this note ({describe_error(err)})"
                return
            half = len(rows) // 2
            yield from self._forward_isolating(notes, rows[:half], model_error)
            yield from self._forward_isolating(notes, rows[half:], model_error)


def _check_not_systematic(model_error: list[str | None], encodable: int) -> None:
    """A model that fails on every note of a chunk is broken (a bad checkpoint, a driver
    error), not fed a poison note: fail the task loudly instead of quarantining the day."""
    failed = [error for error in model_error if error is not None]
    if encodable > 1 and len(failed) == encodable:
        raise RuntimeError(f"the model failed on all {encodable} notes of a chunk, e.g. "
                           f"{failed[0]}: not a note's fault, stopping")


class _FrameResult:
    """An EncodeResult being filled chunk by chunk, in row order."""

    def __init__(self, frame: pd.DataFrame, embed_dim: int):
        n = len(frame)
        self.frame, self.filled = frame, 0
        self.embeddings = np.zeros((n, embed_dim), dtype=np.float32)
        self.visual_embeddings = np.zeros((n, embed_dim), dtype=np.float32)
        self.image_ok, self.text_ok = np.zeros(n, dtype=bool), np.zeros(n, dtype=bool)
        self.image_error: list[str | None] = []
        self.text_error: list[str | None] = []
        self.model_error: list[str | None] = []
        self.input_wait_s = self.encode_s = 0.0

    @property
    def complete(self) -> bool:
        return self.filled == len(self.frame)

    def add(self, notes: PreparedNotes, embeddings: np.ndarray, visual: np.ndarray,
            model_error: list[str | None]) -> None:
        rows = slice(self.filled, self.filled + len(notes.lengths))
        self.embeddings[rows], self.visual_embeddings[rows] = embeddings, visual
        self.image_ok[rows], self.text_ok[rows] = notes.image_ok, notes.text_ok
        self.image_error.extend(notes.image_error)
        self.text_error.extend(notes.text_error)
        self.model_error.extend(model_error)
        self.filled = rows.stop

    def finish(self) -> EncodeResult:
        return EncodeResult(
            embeddings=self.embeddings,
            visual_embeddings=self.visual_embeddings,
            image_ok=self.image_ok,
            image_error=self.image_error,
            text_ok=self.text_ok,
            has_content=self.image_ok | self.text_ok,
            text_error=self.text_error,
            model_error=self.model_error,
            input_wait_s=self.input_wait_s,
            encode_s=self.encode_s,
        )


def compile_model(model: torch.nn.Module) -> None:
    """torch.compile the vision tower and the LLM in place (state-dict keys unchanged).

    Dynamic shapes: batches vary in rows and length, and one graph serves them all.
    """
    for module in (model.vision_tower, model.language_model):
        module.compile(dynamic=True)
