"""Batch encoding of `notes` rows with a NoteLLM-2 checkpoint: what the Spark UDF calls.

An executor builds one Encoder from a checkpoint directory (no pickled state) and calls
`encode_detailed` once per Arrow batch. The Encoder leaves torch's thread settings to its
caller.
"""

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from notellm2_udf.checkpoint import load_checkpoint, model_version
from notellm2_udf.images import DEFAULT_MAX_PIXELS

# Tokens (rows x longest row) per forward pass. A 7B-class LLM in bf16 on an 80 GB GPU
# handles 16k-token batches comfortably; on a CPU smaller batches waste less on padding.
DEFAULT_BATCH_TOKENS = {"cuda": 16384, "cpu": 4096}
# Notes prepared (images decoded and resized) at a time: bounds the pixel memory
# (1024 x 3 x 224 x 224 float32 = 600 MB) while still sorting enough notes by length.
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
    """

    def __init__(
        self,
        model_dir: str | Path,
        device: str | torch.device = "auto",
        *,
        batch_tokens: int | None = None,
        max_image_pixels: int = DEFAULT_MAX_PIXELS,
        chunk_rows: int = DEFAULT_CHUNK_ROWS,
    ):
        self.device = resolve_device(device)
        dtype = torch.bfloat16 if self.device.type == "cuda" else torch.float32
        self.model, self.processor = load_checkpoint(model_dir, device=self.device, dtype=dtype)
        self.model_version = model_version(model_dir)
        self.batch_tokens = batch_tokens or DEFAULT_BATCH_TOKENS.get(self.device.type, 4096)
        self.max_image_pixels = max_image_pixels
        self.chunk_rows = chunk_rows

    @property
    def embed_dim(self) -> int:
        return self.model.config.embed_dim

    def encode(self, notes_pdf: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        """`notes` rows -> (embeddings, visual_embeddings), each [rows, embed_dim] float32."""
        result = self.encode_detailed(notes_pdf)
        return result.embeddings, result.visual_embeddings

    def encode_detailed(self, notes_pdf: pd.DataFrame) -> EncodeResult:
        n = len(notes_pdf)
        embeddings = np.zeros((n, self.embed_dim), dtype=np.float32)
        visual_embeddings = np.zeros((n, self.embed_dim), dtype=np.float32)
        image_ok, text_ok = np.zeros(n, dtype=bool), np.zeros(n, dtype=bool)
        image_error: list[str | None] = []
        for start in range(0, n, self.chunk_rows):
            notes = self.processor.prepare_notes(
                notes_pdf.iloc[start:start + self.chunk_rows], max_image_pixels=self.max_image_pixels
            )
            image_ok[start:start + len(notes.lengths)] = notes.image_ok
            text_ok[start:start + len(notes.lengths)] = notes.text_ok
            image_error.extend(notes.image_error)
            encodable = np.flatnonzero(notes.has_content)
            for batch in token_budget_batches(notes.lengths[encodable], self.batch_tokens):
                rows = encodable[batch]
                inputs = self.processor.collate(notes, rows)
                with torch.inference_mode():
                    output = self.model(**{k: v.to(self.device) for k, v in inputs.items()})
                embeddings[start + rows] = output.embedding.cpu().numpy()
                visual_embeddings[start + rows] = output.visual_embedding.cpu().numpy()
        return EncodeResult(
            embeddings=embeddings,
            visual_embeddings=visual_embeddings,
            image_ok=image_ok,
            image_error=image_error,
            text_ok=text_ok,
            has_content=image_ok | text_ok,
        )
