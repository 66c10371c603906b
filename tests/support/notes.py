"""Synthetic note images and `notes` frames for the model tests."""

import io

import numpy as np
import pandas as pd
from PIL import Image


def image_bytes(seed: int = 0, size: tuple[int, int] = (48, 40), fmt: str = "PNG",
                mode: str = "RGB") -> bytes:
    """Random-noise image of `size` (width, height) encoded as `fmt`."""
    rng = np.random.default_rng(seed)
    pixels = rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).convert(mode).save(buffer, fmt)
    return buffer.getvalue()


def notes_frame(rows: list[dict]) -> pd.DataFrame:
    """A `notes` contract frame; missing fields are None."""
    columns = ["dt", "note_id", "title", "content", "topics", "image"]
    filled = [{"dt": "2026-11-01", "note_id": f"n{i}", **row} for i, row in enumerate(rows)]
    return pd.DataFrame([{c: row.get(c) for c in columns} for row in filled], columns=columns)


def mixed_notes() -> pd.DataFrame:
    """Eight notes covering images present / missing, English / Chinese, long / empty text."""
    return notes_frame([
        {"title": "Autumn hike", "content": "Red leaves everywhere #hiking# #autumn#",
         "image": image_bytes(1)},
        {"title": "周末咖啡", "content": "这家店的拿铁很好喝 #咖啡#", "topics": ["探店"],
         "image": image_bytes(2)},
        {"title": "No picture", "content": "Text only note about bread baking", "image": None},
        {"title": "Long one", "content": "word " * 200, "topics": ["a", "b"],
         "image": image_bytes(3, fmt="JPEG")},
        {"title": "", "content": "", "image": image_bytes(4)},
        {"title": "Short", "content": None, "image": None},
        {"title": "GIF", "content": "animated", "image": image_bytes(5, fmt="GIF")},
        {"title": "WebP", "content": "modern format", "topics": np.array(["web"]),
         "image": image_bytes(6, fmt="WEBP")},
    ])
