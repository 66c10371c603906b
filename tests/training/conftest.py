"""Tiny model, sample Delta tables and the training pair rows, built once per session."""

import pytest

from tests.training import fixtures


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> str:
    return fixtures.tiny_model_dir(tmp_path_factory.mktemp("training-model"))


@pytest.fixture(scope="session")
def sample_locations(spark, tmp_path_factory) -> tuple[str, str]:
    return fixtures.sample_tables(spark, tmp_path_factory.mktemp("training-sample"))


@pytest.fixture(scope="session")
def pair_rows_df(spark):
    """Training pairs (first day) with both notes, cached."""
    from notellm2_udf.inputs.notes import split_duplicates
    from notellm2_udf.training.pairs import split_by_date, undirected_pairs, with_notes

    notes_df, pairs_df = fixtures.sample_frames(spark)
    train_df, _ = split_by_date(pairs_df, fixtures.SAMPLE.day_strings[1])
    return with_notes(undirected_pairs(train_df), split_duplicates(notes_df)[0]).cache()
