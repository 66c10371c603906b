"""jobs/evaluate.py: input blanking and a whole run on sample tables with the tiny model."""

import json

import numpy as np
import pandas as pd
import pytest

from jobs import evaluate
from notellm2_udf.evaluation.recall import select_test_pairs
from notellm2_udf.settings.declared import parse_settings
from schemas import NOTES
from tests.support.training_data import contract_pairs_copy


def test_with_inputs_blanks_text_or_image(spark):
    notes_df = spark.createDataFrame(pd.DataFrame({
        "dt": ["d"], "note_id": ["n"], "title": ["T"], "content": ["C"], "topics": [["x"]],
        "image": [b"\x01"]}), NOTES.schema)
    image_only = evaluate.with_inputs(notes_df, "image").first()
    text_only = evaluate.with_inputs(notes_df, "text").first()
    full = evaluate.with_inputs(notes_df, "full").first()
    assert (image_only.title, image_only.content, image_only.topics, bytes(image_only.image)) == (
        None, None, None, b"\x01")
    assert (text_only.title, text_only.content, text_only.topics, text_only.image) == (
        "T", "C", ["x"], None)
    assert full == notes_df.first()
    assert [f.dataType for f in evaluate.with_inputs(notes_df, "image").schema] == [
        f.dataType for f in notes_df.schema]


def test_evaluate_job_writes_the_report(spark, tiny_checkpoint, sample_locations, tmp_path):
    notes_uri, pairs_uri = sample_locations
    report = tmp_path / "report"
    code = evaluate.main(["--pairs", pairs_uri, "--notes", notes_uri, "--model",
                          str(tiny_checkpoint),
                          "--report", str(report), "--ks", "1,10,1000"])
    assert code == 0
    metrics = json.loads((report / "metrics.json").read_text())
    assert set(metrics) == {"full", "image", "text", "text_no_image", "subsets", "counts",
                            "model_version", "held_out_from"}
    assert metrics["held_out_from"] == "2026-11-21"
    assert set(metrics["subsets"]["full"]) == {"short_query", "long_query", "short_target",
                                               "long_target", "image_pairs", "text_pairs"}

    # The pool is smaller than 1000, so R@1000 is the share of test pairs whose two notes
    # can be encoded under the inputs: all of them with full inputs, only pairs where both
    # have an image (text) with image-only (text-only) inputs.
    # The pool: the notes of the test pairs, whatever day they were posted.
    notes = spark.read.format("delta").load(notes_uri).toPandas()
    has_image = dict(zip(notes["note_id"], notes["image"].notna()))
    has_text = dict(zip(notes["note_id"], notes["title"].fillna("").str.len() > 0))
    pairs = spark.read.format("delta").load(pairs_uri).where("dt = '2026-11-21'").toPandas()
    present = pairs["note_id"].isin(notes["note_id"]) & pairs["related_note_id"].isin(
        notes["note_id"])
    test_pairs = select_test_pairs(pairs[present])
    assert metrics["counts"]["test_pairs"] == len(test_pairs)

    def both(flags):
        return float(np.mean([flags[a] and flags[b] for a, b in
                              zip(test_pairs["note_id"], test_pairs["related_note_id"])]))

    assert metrics["full"]["recall@1000"] == 1.0
    assert metrics["image"]["recall@1000"] == both(has_image)
    assert metrics["text"]["recall@1000"] == both(has_text)
    assert metrics["text_no_image"]["recall@1000"] == both(has_text)
    # The two text-only protocols are different inputs: a zero image vs no image segment.
    assert metrics["text"] != metrics["text_no_image"]
    assert both(has_image) < 1.0 and both(has_text) < 1.0  # the sample has both kinds of gap
    assert "| image only | all |" in (report / "report.md").read_text()


def test_evaluate_job_refuses_a_model_that_is_not_there(sample_locations, tmp_path, capsys):
    notes_uri, pairs_uri = sample_locations
    code = evaluate.main(["--pairs", pairs_uri, "--notes", notes_uri,
                          "--model", str(tmp_path / "none"), "--report", str(tmp_path / "r")])
    assert code == 2
    assert "unreadable model" in capsys.readouterr().err


def test_a_table_of_exactly_the_contract_columns_and_only_the_test_period_evaluates(
        spark, tiny_checkpoint, sample_locations, tmp_path):
    """note_id, related_note_id, score, dt (no pair_kind), all of it the test period."""
    notes_uri, pairs_uri = sample_locations
    real_uri = contract_pairs_copy(spark, pairs_uri, str(tmp_path / "real_pairs"), "2026-11-21")
    report = tmp_path / "report"
    code = evaluate.main(["--pairs", real_uri, "--notes", notes_uri, "--model",
                          str(tiny_checkpoint),
                          "--report", str(report), "--ks", "1,1000", "--inputs", "full",
                          "--all-pairs"])
    assert code == 0
    metrics = json.loads((report / "metrics.json").read_text())
    assert metrics["held_out_from"] is None and metrics["full"]["recall@1000"] == 1.0
    assert set(metrics["subsets"]["full"]) == {"short_query", "long_query", "short_target",
                                               "long_target"}


def parse(argv: list[str]) -> evaluate.EvaluateSettings:
    return parse_settings(evaluate.EvaluateSettings, argv)


def test_ranking_flags_reach_the_ranking_settings(capsys):
    required = ["--pairs", "p", "--notes", "n", "--model", "m", "--report", "r"]
    assert parse(required).ranking == evaluate.RankingSettings()
    settings = parse([*required, "--ranking-block-rows", "512", "--ranking-chunk-rows", "32",
                      "--selection-local-pairs", "9"])
    assert settings.ranking == evaluate.RankingSettings(block_rows=512, chunk_rows=32,
                                                        local_pairs=9)
    with pytest.raises(SystemExit) as exit:
        parse([*required, "--ranking-block-rows", "0"])
    assert exit.value.code == 2
    assert "--ranking-block-rows" in capsys.readouterr().err
