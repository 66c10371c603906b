"""Property-based fuzzing of the whole preparation and encoding path: mutated images of every
format and arbitrary text never make an exception escape, and every note is accounted for.

`make test` runs the short deterministic profile below; the slow test runs many more
examples (`make test-slow`).
"""

from __future__ import annotations

import io

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from tests.support.notes import notes_frame
from tests.support.tolerances import NORM_ATOL

FORMATS = ("JPEG", "PNG", "GIF", "WEBP", "BMP", "TIFF")
SPECIAL_STRINGS = ("<IMG>", "<IMG_EMB>", "<s>", "</s>", "<pad>", "<|endoftext|>",
                   "<|im_start|>", "<|im_end|>", "[话题]", "#", "##", "\x00", "\u202e", "\ufeff")
SHORT = settings(max_examples=40, deadline=None, database=None, derandomize=True,
                 suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
LONG = settings(SHORT, max_examples=400)


def _base_images() -> dict[str, bytes]:
    pixels = np.random.default_rng(3).integers(0, 256, (16, 24, 3), dtype=np.uint8)
    image = Image.fromarray(pixels)
    encoded = {}
    for fmt in FORMATS:
        buffer = io.BytesIO()
        image.save(buffer, fmt)
        encoded[fmt] = buffer.getvalue()
    return encoded


BASES = _base_images()


@st.composite
def mutated_images(draw) -> bytes | None:
    """None, or one format's bytes with truncation, bit flips and header edits."""
    if draw(st.integers(0, 9)) == 0:
        return None
    data = bytearray(BASES[draw(st.sampled_from(FORMATS))])
    for position, value in draw(st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 255)),
                                         max_size=6)):
        # Header edits: half of the edits land in the first 64 bytes, where sizes live.
        index = position % (64 if position % 2 else len(data))
        data[index % len(data)] = value
    for bit in draw(st.lists(st.integers(0, 10**7), max_size=4)):
        data[(bit // 8) % len(data)] ^= 1 << (bit % 8)
    if draw(st.booleans()):
        data = data[:draw(st.integers(0, len(data)))]
    return bytes(data)


texts = st.one_of(
    st.none(),
    st.text(max_size=300),  # any code point except surrogates: control, RTL, astral, combining
    st.lists(st.one_of(st.sampled_from(SPECIAL_STRINGS), st.text(max_size=20)),
             max_size=12).map("".join),
)
notes = st.fixed_dictionaries({
    "title": texts, "content": texts, "image": mutated_images(),
    "topics": st.one_of(st.none(), st.lists(st.one_of(st.none(), texts), max_size=5)),
})


def check_every_note_is_accounted_for(encoder, rows: list[dict]) -> None:
    result = encoder.encode_detailed(notes_frame(rows))
    assert len(result.embeddings) == len(rows)
    for row, note in enumerate(rows):
        problems = [result.image_error[row], result.text_error[row], result.model_error[row]]
        if result.embedded[row]:
            assert np.isclose(np.linalg.norm(result.embeddings[row]), 1.0, atol=NORM_ATOL)
        else:
            assert not result.embeddings[row].any()
            # Not embedded: the note had nothing usable, or a reason says what failed.
            assert any(problems) or not result.has_content[row]
        if note["image"] is not None and not result.image_ok[row]:
            assert result.image_error[row]


@SHORT
@given(st.lists(notes, min_size=1, max_size=6))
def test_no_exception_escapes_preparation_or_encoding(tiny_encoder, rows):
    check_every_note_is_accounted_for(tiny_encoder, rows)


@pytest.mark.slow
@LONG
@given(st.lists(notes, min_size=1, max_size=6))
def test_no_exception_escapes_preparation_or_encoding_long_profile(tiny_encoder, rows):
    check_every_note_is_accounted_for(tiny_encoder, rows)
