"""The training pair rows, built once per session."""

import pytest

from tests.support import training_data


@pytest.fixture(scope="session")
def pair_rows_df(spark):
    """Training pairs (first day) with both notes, cached."""
    from notellm2_udf.inputs.notes import split_duplicates
    from notellm2_udf.training.pairs import split_by_date, undirected_pairs, with_notes

    notes_df, pairs_df = training_data.sample_frames(spark)
    train_df, _ = split_by_date(pairs_df, training_data.SAMPLE.day_strings[1])
    return with_notes(undirected_pairs(train_df), split_duplicates(notes_df)[0]).cache()
