"""From raw note fields (title, content, topics, image bytes) to NoteLLM2Model inputs:
decoding (images.py), the prompt (prompt.py) and pixels (pixels.py) put together, batched and
padded, saved and loaded with a checkpoint."""

from concurrent.futures import Executor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from transformers import AutoImageProcessor, AutoTokenizer

from notellm2_udf.errors import describe_error
from notellm2_udf.model.configuration import NoteLLM2Config
from notellm2_udf.model.images import DEFAULT_MAX_PIXELS, ImageDecodeError, decode_image
from notellm2_udf.model.pixels import ImagePixels
from notellm2_udf.model.prompt import NoteFields, PromptBuilder
from notellm2_udf.model.prompt_v1 import V1PromptBuilder

EMPTY_FIELDS = NoteFields(title="", topics="", content="")


@dataclass
class PreparedNotes:
    """n notes ready for batching.

    input_ids: n int64 arrays (unpadded prompts). lengths, embedding_positions,
    visual_positions: [n] int64. image_ok, text_ok: [n] bool. image_error: n reasons (None
    unless an image was present but refused). text_error: n reasons (None unless preparing
    the text raised; the note then goes on without its text). pixel_values:
    [image_ok.sum(), 3, H, W] uint8, resized, in row order (`collate` normalises them);
    image_index: [n] int64 row -> index into pixel_values (-1 without an image). With
    missing_image="zero_image" a row without an image still has the image segment, and
    `collate` gives it an all-zero pixel tensor.
    """

    input_ids: list[np.ndarray]
    lengths: np.ndarray
    embedding_positions: np.ndarray
    visual_positions: np.ndarray
    image_ok: np.ndarray
    text_ok: np.ndarray
    image_error: list[str | None]
    pixel_values: torch.Tensor
    image_index: np.ndarray
    text_error: list[str | None]

    @property
    def has_content(self) -> np.ndarray:
        return self.image_ok | self.text_ok


class NoteLLM2Processor:
    """Tokenizer + image processor + the prompt rules of a NoteLLM2Config."""

    def __init__(self, tokenizer, image_processor, config: NoteLLM2Config):
        self.tokenizer = tokenizer
        self.image_processor = image_processor
        self.config = config
        builder = PromptBuilder if config.prompt_format == "authors" else V1PromptBuilder
        self.prompt = builder(tokenizer, config)
        self.pixels = ImagePixels(image_processor, config)

    @property
    def field_token_budget(self) -> int:
        return self.prompt.field_token_budget

    def with_options(self, **options) -> "NoteLLM2Processor":
        """The same tokenizer and image processor under a copy of the config with `options`
        changed (e.g. missing_image="learned_vector" for the no-image-segment protocol)."""
        config = self.config.__class__(**{**self.config.to_dict(), **options})
        return NoteLLM2Processor(self.tokenizer, self.image_processor, config)

    @property
    def image_size(self) -> int:
        return self.pixels.image_size

    # -- notes -------------------------------------------------------------------------

    def prepare_notes(
        self,
        notes_pdf: pd.DataFrame,
        *,
        max_image_pixels: int = DEFAULT_MAX_PIXELS,
        executor: Executor | None = None,
        device_decoder=None,
    ) -> PreparedNotes:
        """`notes` contract columns (title, content, topics, image) -> PreparedNotes.

        The note is the unit of failure: whatever one note's bytes or text make any step
        raise (decode, convert, resize, preprocess, tokenise), that note alone loses the part
        that failed, with the reason in image_error / text_error, and goes on with what is
        left. A missing or refused image becomes a zero image (missing_image="zero_image") or
        leaves the image segment out of the prompt ("learned_vector"); empty text leaves the
        fields as empty strings. Nothing here raises for a note's content. With an executor,
        images are decoded and resized in its threads, each image right after its decoding
        (the result does not depend on it). A `device_decoder` (inference.device_images)
        takes the JPEGs it can decode on the model's device; the other images go the CPU
        way, and pixel_values is then on that device.
        """
        n = len(notes_pdf)
        datas = _column(notes_pdf, "image", n)
        on_device = device_decoder.pixels(datas) if device_decoder is not None else [None] * n

        def image_pixels(row: int):
            if on_device[row] is not None:
                return on_device[row], None
            return self._image_pixels(datas[row], max_image_pixels)

        prepared = list((executor.map if executor is not None else map)(image_pixels, range(n)))
        image_error = [error for _, error in prepared]
        image_index = np.full(n, -1, dtype=np.int64)
        pixels = []
        for row, (row_pixels, _) in enumerate(prepared):
            if row_pixels is not None:
                image_index[row] = len(pixels)
                pixels.append(row_pixels)
        image_ok = image_index >= 0
        texts = [self._text_fields(title, content, topics) for title, content, topics in zip(
            _column(notes_pdf, "title", n), _column(notes_pdf, "content", n),
            _column(notes_pdf, "topics", n))]
        fields = [text for text, _ in texts]
        text_error = [error for _, error in texts]
        with_image = image_ok | self.config.zero_image_for_missing
        input_ids, embedding_positions, visual_positions = self._tokenize(
            fields, with_image, text_error)
        return PreparedNotes(
            input_ids=input_ids,
            lengths=embedding_positions + 1,
            embedding_positions=embedding_positions,
            visual_positions=visual_positions,
            image_ok=image_ok,
            text_ok=np.asarray([not f.is_empty for f in fields], dtype=bool),
            image_error=image_error,
            pixel_values=_stacked(pixels) if pixels else self.pixels.empty(),
            image_index=image_index,
            text_error=text_error,
        )

    def _image_pixels(self, data, max_image_pixels: int) -> tuple[torch.Tensor | None,
                                                                    str | None]:
        """(resized uint8 pixels, None), (None, why the image was refused) or (None, None)
        for a note without an image."""
        if data is None or (isinstance(data, float) and np.isnan(data)):
            return None, None
        try:
            image = decode_image(bytes(data), max_pixels=max_image_pixels,
                                 draft_size=self.image_size)
            return self.pixels.resize(image), None
        except ImageDecodeError as err:
            return None, err.reason
        # No allow list: whatever a note's bytes make Pillow or the image processor raise
        # (struct.error, IndexError, MemoryError, ...) refuses that image, not the batch.
        except Exception as err:
            return None, f"unreadable image ({describe_error(err)})"

    def _text_fields(self, title, content, topics) -> tuple[NoteFields, str | None]:
        try:
            return self.prompt.prepare_fields(title, content, topics), None
        except Exception as err:  # the note's text is data: any failure drops that text only
            return EMPTY_FIELDS, f"unusable text ({describe_error(err)})"

    def _tokenize(self, fields: list[NoteFields], image_ok: np.ndarray,
                  text_error: list[str | None]):
        """prompt.tokenize over all notes; if it raises, note by note, and a note whose
        text cannot be tokenised is tokenised without its text."""
        try:
            return self.prompt.tokenize(fields, image_ok)
        except Exception:
            pass
        parts = []
        for row, (note_fields, has_image) in enumerate(zip(fields, image_ok)):
            try:
                parts.append(self.prompt.tokenize([note_fields], np.asarray([has_image])))
            except Exception as err:
                fields[row] = EMPTY_FIELDS
                text_error[row] = f"text could not be tokenised ({describe_error(err)})"
                parts.append(self.prompt.tokenize([EMPTY_FIELDS], np.asarray([has_image])))
        return ([ids for part in parts for ids in part[0]],
                np.concatenate([part[1] for part in parts]),
                np.concatenate([part[2] for part in parts]))

    def collate(
        self, notes: PreparedNotes, rows: np.ndarray, device: torch.device | str | None = None
    ) -> dict[str, torch.Tensor]:
        """Model inputs for `rows` of `notes`, right-padded to the longest of them, on `device`
        (default: the CPU); pixels are normalised there. Under missing_image="zero_image"
        every row has an image: a row without one gets zeros (after normalisation)."""
        lengths = notes.lengths[rows]
        input_ids = np.full((len(rows), int(lengths.max())), self.config.pad_token_id, np.int64)
        for out_row, row in enumerate(rows):
            input_ids[out_row, : lengths[out_row]] = notes.input_ids[row]
        image_rows = notes.image_index[rows]
        pixels = notes.pixel_values[torch.from_numpy(image_rows[image_rows >= 0])]
        has_image = image_rows >= 0
        if self.config.zero_image_for_missing:
            has_image = np.ones(len(rows), dtype=bool)
        inputs = {
            "input_ids": torch.from_numpy(input_ids),
            "embedding_positions": torch.from_numpy(notes.embedding_positions[rows]),
            "visual_positions": torch.from_numpy(notes.visual_positions[rows]),
            "has_image": torch.from_numpy(has_image),
        }
        inputs = {name: tensor.to(device) for name, tensor in inputs.items()}
        pixels = self.pixels.normalize(pixels.to(device))
        if self.config.zero_image_for_missing and not bool((image_rows >= 0).all()):
            size = self.image_size
            full = torch.zeros((len(rows), 3, size, size), dtype=pixels.dtype, device=pixels.device)
            full[torch.from_numpy(image_rows >= 0).to(pixels.device)] = pixels
            pixels = full
        inputs["pixel_values"] = pixels
        return inputs

    def __call__(self, notes_pdf: pd.DataFrame, **kwargs) -> dict[str, torch.Tensor]:
        """All notes as one batch of model inputs (tests, small inputs)."""
        notes = self.prepare_notes(notes_pdf, **kwargs)
        return self.collate(notes, np.arange(len(notes_pdf)))

    # -- files -------------------------------------------------------------------------

    def save_pretrained(self, directory: str | Path) -> None:
        """Tokenizer and image-processor files (JSON); the prompt rules live in config.json."""
        self.tokenizer.save_pretrained(directory)
        self.image_processor.save_pretrained(directory)

    @classmethod
    def from_pretrained(cls, directory: str | Path, config: NoteLLM2Config | None = None):
        config = config or NoteLLM2Config.from_pretrained(directory)
        # Given our config, AutoTokenizer takes the class from tokenizer_config.json instead of
        # reading config.json itself (and warning about the "notellm2" model type).
        tokenizer = AutoTokenizer.from_pretrained(directory, config=config)
        # The PIL backend on every machine, so that CPU and GPU hosts preprocess identically.
        image_processor = AutoImageProcessor.from_pretrained(directory, backend="pil")
        return cls(tokenizer, image_processor, config)



def _stacked(pixels: list[torch.Tensor]) -> torch.Tensor:
    """One tensor of per-note pixels, on the device of those decoded on a device, if any."""
    device = next((p.device for p in pixels if p.device.type != "cpu"), torch.device("cpu"))
    return torch.stack([p.to(device) for p in pixels])


def _column(notes_pdf: pd.DataFrame, name: str, n: int):
    """A column's values, or n Nones when the frame lacks it."""
    return notes_pdf[name].tolist() if name in notes_pdf.columns else [None] * n
