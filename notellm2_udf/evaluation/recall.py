"""Recall@K with the paper's protocol, in numpy (../shared/NOTELLM2.md, "Evaluation protocol").

Each note appears in at most one test pair; the query is the pair's first note; the candidate
pool is every held-out note except the queries; candidates are ranked by inner product.
Names as in faiss' contrib: xq queries, xb pool, k.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

DEFAULT_KS = (10, 20, 50, 100, 1000)


def select_test_pairs(pairs_pdf: pd.DataFrame) -> pd.DataFrame:
    """A subset of (note_id, related_note_id, ...) pairs in which every note appears once.

    Greedy over pairs by descending score (ties by ids, so the result does not depend on the
    input order): a pair is kept when neither of its notes is in a kept pair.
    """
    ordered = pairs_pdf.sort_values(["score", "note_id", "related_note_id"],
                                    ascending=[False, True, True])
    seen: set[str] = set()
    keep = []
    for index, query, partner in zip(ordered.index, ordered["note_id"], ordered["related_note_id"]):
        if query == partner or query in seen or partner in seen:
            continue
        seen.update((query, partner))
        keep.append(index)
    return ordered.loc[keep].reset_index(drop=True)


def retrieval_arrays(test_pairs_pdf: pd.DataFrame, embeddings_pdf: pd.DataFrame
                     ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(xq [q, d] with NaN rows for queries without an embedding, xb [n, d] the pool,
    target [q] the partner's row in xb or -1 when it has no embedding).

    embeddings_pdf: one row per held-out note, columns note_id and embedding (None when the
    note could not be encoded, e.g. an image-less note under image-only input). The pool is
    every held-out note with an embedding except the queries.
    """
    encoded = embeddings_pdf[embeddings_pdf["embedding"].notna()]
    vectors = dict(zip(encoded["note_id"], encoded["embedding"]))
    dim = len(next(iter(vectors.values()))) if vectors else 1
    queries = set(test_pairs_pdf["note_id"])
    pool_ids = [note_id for note_id in encoded["note_id"] if note_id not in queries]
    xb = np.asarray([vectors[i] for i in pool_ids], dtype=np.float32).reshape(-1, dim)
    row = {note_id: i for i, note_id in enumerate(pool_ids)}
    missing = np.full(dim, np.nan, dtype=np.float32)
    xq = np.asarray([vectors.get(i, missing) for i in test_pairs_pdf["note_id"]],
                    dtype=np.float32).reshape(-1, dim)
    target = np.asarray([row.get(i, -1) for i in test_pairs_pdf["related_note_id"]], np.int64)
    return xq, xb, target


def partner_ranks(xq: np.ndarray, xb: np.ndarray, target: np.ndarray,
                  chunk_rows: int = 4096) -> np.ndarray:
    """0-based rank of each query's partner among xb by inner product; inf for a query or
    partner without an embedding. Ties count against the partner (rank = candidates scoring
    >= it, minus itself), so a collapsed model cannot score by ties."""
    ranks = np.full(len(xq), np.inf)
    usable = np.flatnonzero((target >= 0) & ~np.isnan(xq).any(axis=1))
    for start in range(0, len(usable), chunk_rows):
        rows = usable[start:start + chunk_rows]
        scores = xq[rows] @ xb.T
        partner_scores = scores[np.arange(len(rows)), target[rows]]
        ranks[rows] = (scores >= partner_scores[:, None]).sum(axis=1) - 1
    return ranks


def recall_at(ranks: np.ndarray, ks: Sequence[int] = DEFAULT_KS) -> dict[str, float]:
    """{"recall@K": share of queries whose partner ranks in the top K}; NaN without queries."""
    return {f"recall@{k}": float(np.mean(ranks < k)) if len(ranks) else float("nan")
            for k in ks}


def length_subsets(pairs_pdf: pd.DataFrame, chars: dict[str, int]) -> dict[str, pd.DataFrame]:
    """The authors' subsets, each its own test-pair set (own greedy selection; its pool is
    then every test note except its queries): short / long queries and short / long
    targets. Short = a text (title + content characters) at most the median over the notes
    of the pairs; the authors' files do not say their threshold (docs/TRAINING.md)."""
    ids = pd.unique(pd.concat([pairs_pdf["note_id"], pairs_pdf["related_note_id"]]))
    threshold = float(np.median([chars[i] for i in ids])) if len(ids) else 0.0
    query_short = pairs_pdf["note_id"].map(chars) <= threshold
    target_short = pairs_pdf["related_note_id"].map(chars) <= threshold
    return {name: select_test_pairs(pairs_pdf[mask]) for name, mask in (
        ("short_query", query_short), ("long_query", ~query_short),
        ("short_target", target_short), ("long_target", ~target_short))}


def pair_kind_subsets(test_pairs_pdf: pd.DataFrame) -> dict[str, np.ndarray]:
    """Masks over the test pairs by `pair_kind` (sample data only: which modality defines a
    pair); empty when the table has no such column."""
    if "pair_kind" not in test_pairs_pdf.columns:
        return {}
    kinds = test_pairs_pdf["pair_kind"].to_numpy()
    return {f"{kind}_pairs": kinds == kind
            for kind in sorted(k for k in set(kinds) if isinstance(k, str))}
