"""The note is the unit of failure: what one note's bytes or text make any step raise stays
with that note; the model's own failures on one note quarantine it; the rest is unchanged."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from PIL import Image

from notellm2_udf import Encoder
from notellm2_udf.inference.settings import EncoderSettings
from tests.support.notes import image_bytes, mixed_notes, notes_frame
from tests.support.tolerances import EMBEDDING_ATOL, SAME_BATCH_ATOL

POISON = "~~~~"  # the byte-level tiny tokenizer gives "~" its own id; no other note has it


def exif_jpeg(pixels: np.ndarray, orientation: int) -> bytes:
    image = Image.fromarray(pixels)
    exif = Image.Exif()
    exif[0x0112] = orientation  # Orientation
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=95, exif=exif.tobytes())
    return buffer.getvalue()


def png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


@pytest.fixture
def poisoned_encoder(tiny_checkpoint):
    """The tiny encoder whose model raises on any batch holding the POISON title."""
    encoder = Encoder(tiny_checkpoint, "cpu", EncoderSettings(batch_tokens=10_000))
    poison_id = encoder.processor.tokenizer.convert_tokens_to_ids("~")
    forward = encoder.model.forward

    def failing_forward(**inputs):
        if (inputs["input_ids"] == poison_id).any():
            raise ValueError("shape mismatch caused by this note")
        return forward(**inputs)

    encoder.model.forward = failing_forward
    return encoder


def test_a_note_that_breaks_the_model_is_quarantined_alone(poisoned_encoder, tiny_encoder):
    notes_pdf = mixed_notes()
    notes_pdf.loc[3, "title"] = POISON
    result = poisoned_encoder.encode_detailed(notes_pdf)
    assert result.model_error[3].startswith("model failed on this note (ValueError: shape")
    assert [error is None for error in result.model_error] == [True] * 3 + [False] + [True] * 4
    assert not result.embedded[3] and not result.embeddings[3].any()
    clean = tiny_encoder.encode_detailed(notes_pdf.drop(index=3))
    others = np.flatnonzero(result.embedded)
    # Batch-independent encoding: the other notes get their own embeddings (a batch of other
    # shapes: up to reduction order).
    np.testing.assert_allclose(result.embeddings[others],
                               clean.embeddings[clean.embedded], atol=EMBEDDING_ATOL)


def test_a_model_that_fails_on_every_note_fails_loudly(poisoned_encoder):
    notes_pdf = mixed_notes().assign(title=POISON)
    with pytest.raises(RuntimeError, match="failed on all 8 notes of a chunk"):
        poisoned_encoder.encode_detailed(notes_pdf)


def test_out_of_memory_is_never_blamed_on_a_note(tiny_checkpoint):
    encoder = Encoder(tiny_checkpoint, device="cpu")

    def out_of_memory(**inputs):
        raise torch.OutOfMemoryError("CUDA out of memory")

    encoder.model.forward = out_of_memory
    with pytest.raises(torch.OutOfMemoryError):
        encoder.encode_detailed(mixed_notes())


def test_an_orientation_6_jpeg_embeds_as_the_picture_turned_upright(tiny_encoder):
    rng = np.random.default_rng(5)
    pixels = rng.integers(0, 256, (40, 64, 3), dtype=np.uint8)
    sideways = exif_jpeg(pixels, orientation=6)
    unturned = exif_jpeg(pixels, orientation=1)
    # The same JPEG pixels turned by hand (orientation 6 = rotate 270 degrees to display),
    # stored losslessly: what the camera meant.
    decoded = Image.open(io.BytesIO(unturned))
    decoded.draft("RGB", (tiny_encoder.processor.image_size,) * 2)
    upright = png(decoded.convert("RGB").transpose(Image.Transpose.ROTATE_270))
    result = tiny_encoder.encode_detailed(notes_frame([
        {"title": "t", "image": sideways}, {"title": "t", "image": upright},
        {"title": "t", "image": unturned}]))
    assert result.image_ok.all()
    # The same pixels in two rows of one batch; a different picture moves them far more.
    np.testing.assert_allclose(result.embeddings[0], result.embeddings[1], rtol=0,
                               atol=SAME_BATCH_ATOL)
    assert np.abs(result.embeddings[0] - result.embeddings[2]).max() > 1e-3


def test_extreme_aspect_ratios_embed_without_materialising_huge_images(tiny_encoder):
    strip = Image.fromarray(np.random.default_rng(1).integers(0, 256, (3, 30_000, 3),
                                                             dtype=np.uint8))
    result = tiny_encoder.encode_detailed(notes_frame([
        {"title": "wide", "image": png(strip)},
        {"title": "tall", "image": png(strip.transpose(Image.Transpose.ROTATE_90))}]))
    assert result.image_ok.all() and result.embedded.all()


def test_anything_a_note_makes_preparation_raise_stays_with_that_note(tiny_processor,
                                                                      monkeypatch):
    def exploding_fields(title, content, topics):
        if title == "explode":
            raise IndexError("deep inside the text rules")
        return original(title, content, topics)

    original = tiny_processor.prompt.prepare_fields
    monkeypatch.setattr(tiny_processor.prompt, "prepare_fields", exploding_fields)
    notes = tiny_processor.prepare_notes(notes_frame([
        {"title": "fine", "image": image_bytes(1)},
        {"title": "explode", "image": image_bytes(2)},
        {"title": "explode"},
    ]))
    assert notes.text_error == [None, "unusable text (IndexError: deep inside the text rules)",
                                "unusable text (IndexError: deep inside the text rules)"]
    assert notes.text_ok.tolist() == [True, False, False]
    assert notes.image_ok.tolist() == [True, True, False]
    assert notes.has_content.tolist() == [True, True, False]
