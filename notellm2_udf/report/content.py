"""What the QA report shows, as plain Python values: note cards, query panels, counts,
histogram bins and image thumbnails (collected by collect.py, rendered by html.py)."""

from __future__ import annotations

import base64
import io
from dataclasses import dataclass, field

from notellm2_udf.model.images import DEFAULT_MAX_PIXELS, ImageDecodeError, decode_image

HISTOGRAM_BINS = 20


@dataclass(frozen=True)
class NoteCard:
    note_id: str
    title: str | None
    thumbnail: str | None  # data: URI, or None when the note has no usable image
    rank: int | None = None
    score: float | None = None


@dataclass(frozen=True)
class QueryPanel:
    query: NoteCard
    related: list[NoteCard]


@dataclass
class ReportData:
    """Everything the page shows, already collected from Spark (plain Python values)."""

    day: str
    model_versions: list[str]
    day_counts: list[dict]          # per dt: notes, embedded, with_image, errors, queries, ...
    error_counts: list[dict]        # per (dt, stage): errors
    error_examples: list[dict]      # dt, note_id, stage, error
    histogram: list[tuple[float, float, int]]  # (low, high, count) bins of the day's scores
    panels: list[QueryPanel] = field(default_factory=list)


def thumbnail_data_uri(image: bytes | None, px: int) -> str | None:
    """A JPEG thumbnail (longest side `px`) as a data: URI; None for a missing or refused
    image (the same decoder the encoder uses: bombs and broken data are refused)."""
    if not image:
        return None
    try:
        decoded = decode_image(bytes(image), max_pixels=DEFAULT_MAX_PIXELS, draft_size=px)
    except ImageDecodeError:
        return None
    decoded.thumbnail((px, px))
    buffer = io.BytesIO()
    decoded.save(buffer, format="JPEG", quality=80)
    return "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def bin_width(low: float, high: float, bins: int = HISTOGRAM_BINS) -> float:
    """The width of `bins` equal bins over [low, high] (1.0 when all scores are equal)."""
    return (high - low) / bins or 1.0


def histogram_from_counts(low: float, high: float, counts: dict[int, int],
                          bins: int = HISTOGRAM_BINS) -> list[tuple[float, float, int]]:
    """(low, high, count) per bin, from the count of each bin index (absent: 0)."""
    width = bin_width(low, high, bins)
    return [(low + i * width, low + (i + 1) * width, counts.get(i, 0)) for i in range(bins)]
