"""The whole protocol on embeddings already computed: test pairs, subsets, Recall@K.

Pure DataFrame functions (jobs/evaluate.py feeds them the model's embeddings,
benchmarks/evaluate_scale.py synthetic ones); what reaches the driver is counts.
"""

from __future__ import annotations

from collections.abc import Sequence

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from notellm2_udf.evaluation.ranking import SET_COLUMN, RankingSettings, partner_ranks
from notellm2_udf.evaluation.recall import length_subsets, pair_kind_recalls, recall_by_set
from notellm2_udf.evaluation.selection import select_test_pairs_df


def test_pair_sets(pairs_df: DataFrame, chars_df: DataFrame,
                   settings: RankingSettings) -> dict[str, DataFrame]:
    """{"all": the test pairs, "short_query" ..: the length subsets'}, each its own
    selection among `pairs_df` (pairs whose two notes are held-out notes), checkpointed:
    every input kind ranks them again."""
    candidates = {"all": pairs_df, **length_subsets(pairs_df, chars_df)}
    return {name: select_test_pairs_df(df, settings.local_pairs).localCheckpoint()
            for name, df in candidates.items()}


def evaluate_embeddings(pair_sets: dict[str, DataFrame], embeddings_df: DataFrame,
                        ks: Sequence[int], settings: RankingSettings
                        ) -> tuple[dict[str, float], dict[str, dict[str, float]]]:
    """(Recall@K of the test pairs, {subset: Recall@K}): the length subsets ranked in their
    own pools (all sets in one pass), the pair-kind subsets (sample data) among the test
    pairs' ranks.
    embeddings_df: note_id, embedding (null when the note could not be encoded) of every
    held-out note."""
    ranked_df = partner_ranks(pair_sets, embeddings_df, settings).localCheckpoint()
    recalls = recall_by_set(ranked_df, list(pair_sets), ks)
    subsets = {name: recalls[name] for name in pair_sets if name != "all"}
    subsets.update(pair_kind_recalls(ranked_df.where(F.col(SET_COLUMN) == "all"), ks))
    return recalls["all"], subsets
