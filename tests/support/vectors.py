"""Synthetic note embeddings: unit vectors around a few cluster centres, their exact related
notes, and note_embeddings / related_notes Delta tables of them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from schemas import NOTE_EMBEDDINGS


def clustered_vectors(n: int, d: int = 32, *, centres: int = 20, noise: float = 1.0,
                      seed: int = 0) -> np.ndarray:
    """float32 [n, d] unit vectors drawn around `centres` random centres."""
    rng = np.random.default_rng(seed)
    centre = rng.standard_normal((centres, d)).astype("float32")
    x = centre[rng.integers(0, centres, n)] + noise * rng.standard_normal((n, d))
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype("float32")


def exact_related(note_ids, xb: np.ndarray, k: int) -> dict[str, list[tuple[str, float]]]:
    """Brute force: each note's top-k (related_note_id, score), itself excluded, ties by id."""
    note_ids = np.asarray(note_ids, dtype=object)
    scores = xb @ xb.T
    related = {}
    for row, note_id in enumerate(note_ids):
        order = sorted((-scores[row, col], note_ids[col]) for col in range(len(note_ids))
                       if col != row)
        related[note_id] = [(other, -score) for score, other in order[:k]]
    return related


def embeddings_pdf(note_ids, xb: np.ndarray, *, dt: str, model_version: str = "m1") -> pd.DataFrame:
    return pd.DataFrame({
        "dt": dt, "note_id": list(note_ids), "embedding": list(xb),
        "visual_embedding": None, "model_version": model_version, "image_ok": False,
        "run_id": "test-run",
    })


def write_embeddings(spark, location: Path, *pdfs: pd.DataFrame) -> str:
    """Append the rows of `pdfs` to a note_embeddings Delta table at `location`."""
    for pdf in pdfs:
        (spark.createDataFrame(pdf, NOTE_EMBEDDINGS.schema)
         .write.format("delta").mode("append").save(str(location)))
    return str(location)


def read_related(spark, location: str, day: str) -> dict[str, list[tuple[str, float]]]:
    """note_id -> [(related_note_id, score)] in rank order, from the written table."""
    pdf = (spark.read.format("delta").load(location).where(f"dt = '{day}'")
           .orderBy("note_id", "rank").toPandas())
    ranks_ok = pdf.groupby("note_id")["rank"].agg(lambda r: list(r) == list(range(1, len(r) + 1)))
    if not ranks_ok.all():
        raise AssertionError("ranks are not 1..n per note")
    return {note_id: list(zip(group["related_note_id"], group["score"]))
            for note_id, group in pdf.groupby("note_id")}
