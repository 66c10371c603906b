"""Notes for the embedding job: sample notes plus one of every kind of bad input."""

from __future__ import annotations

import io
import zlib
from datetime import date

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from notellm2_udf.sample.notes import SampleSpec, generate

DAY = "2026-11-25"


def _encoded(image: Image.Image, fmt: str, **save_args) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **save_args)
    return buffer.getvalue()


def _png_claiming(side: int) -> bytes:
    """A valid PNG header that claims side x side pixels (the data is tiny)."""
    data = bytearray(_encoded(Image.new("L", (1, 1)), "PNG"))
    data[16:24] = side.to_bytes(4, "big") + side.to_bytes(4, "big")
    data[29:33] = zlib.crc32(bytes(data[12:29])).to_bytes(4, "big")  # IHDR's CRC
    return bytes(data)


def _animated_gif() -> bytes:
    frames = [Image.new("P", (40, 30), colour) for colour in (10, 200)]
    return _encoded(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=50)


def _bad_note(note_id, image=None, title="crafted title", content="crafted body #crafted#"):
    return {"dt": DAY, "note_id": note_id, "title": title, "content": content,
            "topics": ["crafted"] if content else None, "image": image}


# note_id -> what the job must make of it: (embedded, image_ok, error stages)
EXPECTED = {
    "bad-corrupt-jpeg": (True, False, ["image"]),
    "bad-bomb": (True, False, ["image"]),
    "bad-over-cap": (True, False, ["image"]),
    "bad-bmp": (True, False, ["image"]),
    "bad-empty-bytes": (True, False, ["image"]),
    "bad-nothing": (False, False, ["input"]),
    "bad-no-text-corrupt-image": (False, False, ["input"]),
    "ok-cmyk": (True, True, []),
    "ok-palette-alpha": (True, True, []),
    "ok-16bit": (True, True, []),
    "ok-animated-gif": (True, True, []),
    "ok-webp": (True, True, []),
    "ok-text-only": (True, False, []),
    "dup-two": (True, True, ["duplicate"]),
    "dup-three": (True, True, ["duplicate", "duplicate"]),
}


def crafted_notes() -> pd.DataFrame:
    rgb = Image.new("RGB", (48, 40), (200, 30, 30))
    jpeg = _encoded(rgb, "JPEG")
    palette = Image.new("P", (32, 32), 3)
    palette.info["transparency"] = 3
    rows = [
        _bad_note("bad-corrupt-jpeg", jpeg[: len(jpeg) // 3]),
        _bad_note("bad-bomb", _png_claiming(100_000)),
        _bad_note("bad-over-cap", _png_claiming(8_000)),
        _bad_note("bad-bmp", _encoded(rgb, "BMP")),
        _bad_note("bad-empty-bytes", b""),
        _bad_note("bad-nothing", None, title=None, content=None),
        _bad_note("bad-no-text-corrupt-image", b"\xff\xd8\xff garbage", title="", content=""),
        _bad_note("ok-cmyk", _encoded(rgb.convert("CMYK"), "JPEG")),
        _bad_note("ok-palette-alpha", _encoded(palette, "PNG")),
        _bad_note("ok-16bit", _encoded(Image.fromarray(
            np.arange(64 * 64, dtype=np.uint16).reshape(64, 64) * 16), "PNG")),
        _bad_note("ok-animated-gif", _animated_gif()),
        _bad_note("ok-webp", _encoded(rgb, "WEBP")),
        _bad_note("ok-text-only", None),
        # Copies differ: the kept one (with an image) must not depend on the input order.
        _bad_note("dup-two", None, title="copy without image"),
        _bad_note("dup-two", jpeg, title="copy with image"),
        _bad_note("dup-three", jpeg, title="same"),
        _bad_note("dup-three", jpeg, title="same"),
        _bad_note("dup-three", None, title="no image"),
    ]
    return pd.DataFrame(rows)


@pytest.fixture(scope="session")
def day_notes_pdf() -> pd.DataFrame:
    """40 sample notes of DAY followed by the crafted ones."""
    notes_pdf, _ = generate(SampleSpec(date(2026, 11, 25), days=1, notes_per_day=40, seed=3))
    return pd.concat([notes_pdf, crafted_notes()], ignore_index=True)
