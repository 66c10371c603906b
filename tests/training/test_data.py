"""Spark-side pair preparation and the petastorm loader."""

import json

import numpy as np
import pandas as pd
import pytest
import torch
from pyspark.sql import Window
from pyspark.sql import functions as F

from notellm2_udf.training.pairs import (
    first_held_out_day,
    number_epoch,
    split_by_date,
    undirected_pairs,
    undirected_rows,
    with_notes,
)


def _pairs_df(spark, rows):
    return spark.createDataFrame(
        pd.DataFrame(rows, columns=["note_id", "related_note_id", "score", "dt", "pair_kind"]))


def test_split_by_date_and_the_default_held_out_day(spark):
    pairs_df = _pairs_df(spark, [("a", "b", 1.0, "2026-11-01", "text"),
                                 ("c", "d", 1.0, "2026-11-02", "text"),
                                 ("e", "f", 1.0, "2026-11-03", "image")])
    assert first_held_out_day(pairs_df, 1) == "2026-11-03"
    assert first_held_out_day(pairs_df, 2) == "2026-11-02"
    with pytest.raises(ValueError, match="leaves none to train on"):
        first_held_out_day(pairs_df, 3)
    train_df, held_out_df = split_by_date(pairs_df, "2026-11-02")
    assert [r.note_id for r in train_df.collect()] == ["a"]
    assert sorted(r.note_id for r in held_out_df.collect()) == ["c", "e"]


def test_undirected_pairs_keep_the_higher_scored_direction(spark):
    pairs_df = _pairs_df(spark, [("a", "b", 1.0, "d", "text"), ("b", "a", 2.0, "d", "text"),
                                 ("a", "c", 0.5, "d", "text"), ("c", "c", 9.0, "d", "text")])
    rows = sorted((r.note_id, r.related_note_id, r.score)
                  for r in undirected_pairs(pairs_df).collect())
    assert rows == [("a", "c", 0.5), ("b", "a", 2.0)]


def test_with_notes_attaches_both_notes(spark):
    from schemas import NOTES

    notes_df = spark.createDataFrame(pd.DataFrame({
        "dt": ["d"] * 2, "note_id": ["a", "b"], "title": ["A", "B"], "content": ["x", None],
        "topics": [["t1", "t2"], None], "image": [b"\x01", None]}), NOTES.schema)
    pairs_df = _pairs_df(spark, [("a", "b", 1.0, "d", "text"), ("a", "zz", 1.0, "d", "text")])
    rows = with_notes(pairs_df, notes_df).collect()
    assert len(rows) == 1  # the pair with a missing note is dropped
    row = rows[0]
    assert (row.a_note_id, row.a_title, json.loads(row.a_topics), bytes(row.a_image)) == (
        "a", "A", ["t1", "t2"], b"\x01")
    assert (row.b_note_id, row.b_title, row.b_content, row.b_topics, row.b_image) == (
        "b", "B", None, None, None)
    # The same pairs both ways round and a self-pair: one undirected pair has its notes,
    # (a, zz) and (zz, b) have not.
    pairs_df = _pairs_df(spark, [("a", "b", 1.0, "d", "text"), ("b", "a", 0.5, "d", "text"),
                                 ("a", "zz", 1.0, "d", "text"), ("zz", "b", 1.0, "d", "text"),
                                 ("a", "a", 1.0, "d", "text")])
    rows_df, dropped = undirected_rows(pairs_df, notes_df)
    assert [(r.a_note_id, r.b_note_id) for r in rows_df.collect()] == [("a", "b")]
    assert dropped == 2


def test_number_epoch_lays_out_global_batches(pair_rows_df):
    total = pair_rows_df.count()
    numbered = number_epoch(pair_rows_df, seed=0, epoch=0, batch_pairs=2, processes=3).toPandas()
    usable = total - total % 6
    assert sorted(numbered["position"]) == list(range(usable))
    assert (numbered["step"] == numbered["position"] // 6).all()
    assert (numbered["rank"] == (numbered["position"] % 6) // 2).all()
    again = number_epoch(pair_rows_df, seed=0, epoch=0, batch_pairs=2, processes=3).toPandas()
    other_epoch = number_epoch(pair_rows_df, seed=0, epoch=1, batch_pairs=2, processes=3).toPandas()

    def order(frame):
        return list(frame.sort_values("position")["a_note_id"])

    assert order(again) == order(numbered)
    assert order(other_epoch) != order(numbered)


def test_number_epoch_numbers_as_one_global_window_did(pair_rows_df):
    """The positions of the partitioned numbering are those of a row_number over the whole
    seeded order (the numbering before issue 17, in one task)."""
    key = F.xxhash64(F.lit(0), F.lit(1), "a_note_id", "b_note_id")
    window = Window.orderBy(key, "a_note_id", "b_note_id")
    expected = (pair_rows_df.select("a_note_id", "b_note_id",
                                    (F.row_number().over(window) - 1).alias("position"))
                .toPandas().sort_values("position").reset_index(drop=True))
    numbered = (number_epoch(pair_rows_df, seed=0, epoch=1, batch_pairs=1, processes=1)
                .select("a_note_id", "b_note_id", "position").toPandas()
                .sort_values("position").reset_index(drop=True))
    pd.testing.assert_frame_equal(numbered, expected, check_dtype=False)


@pytest.fixture(scope="module")
def rank_converters(pair_rows_df, tmp_path_factory):
    from notellm2_udf.training.data import make_rank_converters

    numbered_df = number_epoch(pair_rows_df, seed=0, epoch=0, batch_pairs=3, processes=2)
    cache = tmp_path_factory.mktemp("petastorm").as_uri()
    return numbered_df.toPandas(), make_rank_converters(numbered_df, 2, cache)


def test_petastorm_loader_yields_each_ranks_pairs_in_order_as_model_inputs(
        rank_converters, tiny_checkpoint):
    from notellm2_udf.model.processor import NoteLLM2Processor
    from notellm2_udf.training.data import LoaderSettings, model_inputs, open_batches

    numbered, converters = rank_converters
    processor = NoteLLM2Processor.from_pretrained(str(tiny_checkpoint))
    settings = LoaderSettings(str(tiny_checkpoint), batch_pairs=3, flip_images=False)
    with open_batches(converters[1], settings) as batches:
        batches = list(batches)
    expected = numbered[numbered["rank"] == 1].sort_values("position")
    assert [b["position"].tolist() for b in batches] == [
        list(group) for group in np.split(expected["position"].to_numpy(), len(batches))]
    assert len(batches) == len(numbered) // 6


    # The second batch as the model gets it: 3 first notes, then their 3 partners.
    rows = expected.iloc[3:6]
    notes_pdf = pd.DataFrame({
        name: list(rows[f"a_{name}"]) + list(rows[f"b_{name}"])
        for name in ("note_id", "title", "content", "image")})
    notes_pdf["topics"] = [json.loads(t) if t else None
                           for t in list(rows["a_topics"]) + list(rows["b_topics"])]
    want = processor(notes_pdf)
    got = model_inputs(batches[1])
    for key in ("input_ids", "embedding_positions", "visual_positions", "has_image"):
        assert torch.equal(got[key], want[key]), key
    assert torch.allclose(got["pixel_values"], want["pixel_values"])


def test_image_flips_are_seeded_per_note(rank_converters, tiny_checkpoint):
    from notellm2_udf.training.data import LoaderSettings, model_inputs, open_batches

    _, converters = rank_converters

    def first_batch(flip: bool, epoch: int = 0):
        settings = LoaderSettings(str(tiny_checkpoint), batch_pairs=3, epoch=epoch,
                                  flip_images=flip)
        with open_batches(converters[0], settings) as batches:
            return model_inputs(next(batches))["pixel_values"]

    plain, flipped, again = first_batch(False), first_batch(True), first_batch(True)
    assert torch.equal(flipped, again)
    mirrored = [torch.equal(f, p.flip(-1)) and not torch.equal(f, p)
                for f, p in zip(flipped, plain)]
    untouched = [torch.equal(f, p) for f, p in zip(flipped, plain)]
    assert all(m or u for m, u in zip(mirrored, untouched)) and any(mirrored)


def test_each_rank_is_written_as_several_files_of_its_pairs_in_order(rank_converters):
    import pyarrow.parquet as pq

    numbered, converters = rank_converters
    for rank, converter in enumerate(converters):
        # In the order the loader reads them.
        paths = [url.removeprefix("file://") for url in converter.file_urls]
        assert len(paths) > 1  # written in parallel, not by one task
        stored = pd.concat([pq.read_table(path).to_pandas() for path in paths])
        expected = numbered[numbered["rank"] == rank].sort_values("position")
        assert stored["position"].tolist() == expected["position"].tolist()
        pd.testing.assert_frame_equal(
            stored.reset_index(drop=True),
            expected[list(stored.columns)].reset_index(drop=True), check_dtype=False)
