"""A small, exactly known related-notes world: notes, embeddings, errors and related_notes of
two days, written as contract Delta tables (the way the daily jobs leave them).

Related notes are exact top-k over the window (both days), the query itself excluded, ordered
by score desc then related_note_id, so validation checks and recall are exact.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from notellm2_udf.spark.delta_io import register_table, replace_days
from schemas import EMBEDDING_ERRORS, NOTE_EMBEDDINGS, NOTES, RELATED_NOTES

DAYS = ("2026-11-24", "2026-11-25")
NOTES_PER_DAY = 6
DIM = 8
TOP_K = 3
MODEL_VERSION = "tinyabc123"
RUN_ID = "scheduled__2026-11-25T00:00:00+00:00"
HOSTILE_TITLE = ("<script>document.body.setAttribute('data-pwned','1')</script>"
                 "<img src=x onerror=\"document.title='pwned'\">&amp; café")
NO_CONTENT_ID = "20261125-000005"   # no text, no image: an 'input' error, not embedded
BAD_IMAGE_ID = "20261125-000004"    # broken image bytes: an 'image' error, embedded from text
HOSTILE_ID = "20261125-000000"


@dataclass(frozen=True)
class World:
    root: Path
    locations: dict[str, str]          # table name -> Delta location
    vectors: dict[str, np.ndarray]     # note_id -> unit embedding
    related: list[tuple]               # (dt, note_id, rank, related_note_id, score)


def note_id(day: str, i: int) -> str:
    return f"{day.replace('-', '')}-{i:06d}"


def image_bytes(i: int, fmt: str = "PNG") -> bytes:
    colours = [(200, 30, 30), (30, 160, 60), (40, 70, 200), (220, 180, 20)]
    image = Image.new("RGB", (48 + 8 * i, 40), colours[i % len(colours)])
    buffer = io.BytesIO()
    image.save(buffer, format=fmt)
    return buffer.getvalue()


def notes_rows() -> list[tuple]:
    rows = []
    for day in DAYS:
        for i in range(NOTES_PER_DAY):
            nid = note_id(day, i)
            title, content, image = f"note {i} of {day}", f"body {i}", image_bytes(i)
            if nid == HOSTILE_ID:
                title = HOSTILE_TITLE
            if nid == NO_CONTENT_ID:
                title, content, image = None, None, None
            if nid == BAD_IMAGE_ID:
                image = b"\x89PNG not really"
            rows.append((day, nid, title, content, ["topic"], image))
    return rows


def embedded_ids() -> list[tuple[str, str]]:
    return [(day, note_id(day, i)) for day in DAYS for i in range(NOTES_PER_DAY)
            if note_id(day, i) != NO_CONTENT_ID]


def unit_vectors(seed: int = 7) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    vectors = {}
    for _, nid in embedded_ids():
        v = rng.normal(size=DIM).astype(np.float32)
        vectors[nid] = v / np.linalg.norm(v)
    return vectors


def exact_related(vectors: dict[str, np.ndarray], day: str) -> list[tuple]:
    """Exact top-k of every note embedded in the window ending at `day` (all days <= day)."""
    window = [nid for d, nid in embedded_ids() if d <= day]
    rows = []
    for query in window:
        scored = sorted(((float(np.float32(vectors[query] @ vectors[other])), other)
                         for other in window if other != query), key=lambda s: (-s[0], s[1]))
        rows += [(day, query, rank, other, score)
                 for rank, (score, other) in enumerate(scored[:TOP_K], start=1)]
    return rows


_SHARED: dict[int, World] = {}


def shared_world(spark, tmp_path_factory) -> World:
    """One world per test session (writing it is the slow part), registered again for each
    caller: other tests may have pointed the notellm2.* names elsewhere meanwhile."""
    key = id(spark)
    if key not in _SHARED:
        _SHARED[key] = write_world(spark, tmp_path_factory.mktemp("related_world"),
                                   register=False)
    world = _SHARED[key]
    register_world(spark, world)
    return world


def day_frames(spark, world: World, day: str) -> dict:
    """The world's tables on `day` as validate_related reads them: notes, embeddings, errors,
    related, and the 30-day window's embeddings."""
    from notellm2_udf.index.validation import window_embeddings
    from notellm2_udf.spark.delta_io import read_day

    loc = world.locations
    return {
        "notes": read_day(spark, loc["notes"], day),
        "embeddings": read_day(spark, loc["note_embeddings"], day),
        "errors": read_day(spark, loc["embedding_errors"], day),
        "related": read_day(spark, loc["related_notes"], day),
        "window": window_embeddings(spark.read.format("delta").load(loc["note_embeddings"]),
                                    day, 30),
    }


def register_world(spark, world: World) -> None:
    for name, spec in (("notes", NOTES), ("note_embeddings", NOTE_EMBEDDINGS),
                       ("embedding_errors", EMBEDDING_ERRORS), ("related_notes", RELATED_NOTES)):
        register_table(spark, spec, world.locations[name])


def write_world(spark, root: Path, *, register: bool = True) -> World:
    root.mkdir(parents=True, exist_ok=True)
    locations = {name: str(root / name) for name in
                 ("notes", "note_embeddings", "embedding_errors", "related_notes")}
    vectors = unit_vectors()
    related = [row for day in DAYS for row in exact_related(vectors, day)]
    tables = {
        "notes": (NOTES, notes_rows()),
        "note_embeddings": (NOTE_EMBEDDINGS, [
            (day, nid, vectors[nid].tolist(), None, MODEL_VERSION, nid != BAD_IMAGE_ID, RUN_ID)
            for day, nid in embedded_ids()]),
        "embedding_errors": (EMBEDDING_ERRORS, [
            (DAYS[1], BAD_IMAGE_ID, "image", "image refused, embedded from text: <corrupt>",
             MODEL_VERSION, RUN_ID),
            (DAYS[1], NO_CONTENT_ID, "input", "no usable text or image", MODEL_VERSION,
             RUN_ID)]),
        "related_notes": (RELATED_NOTES, [(*row, MODEL_VERSION) for row in related]),
    }
    for name, (spec, rows) in tables.items():
        replace_days(spark.createDataFrame(rows, spec.schema), spec, locations[name], DAYS[0],
                     DAYS[-1])
    world = World(root, locations, vectors, related)
    if register:
        register_world(spark, world)
    return world
