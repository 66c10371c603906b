"""Evaluate a NoteLLM-2 checkpoint on held-out related pairs: Recall@K, subsets, modality ablation.

    spark-submit jobs/evaluate.py --pairs URI --notes URI --model DIR --report DIR \
        [--ks 10,20,50,100,1000] [--inputs full,image,text] \
        [--holdout-days 1 | --held-out-from yyyy-MM-dd] [--max-image-pixels N]

The paper's protocol: held-out pairs (the same split as jobs/train.py by default) reduced so
that each note appears once; query = first note of a pair; pool = every held-out note (notes
of the held-out days) except the queries; inner-product ranking; Recall@K. Notes are encoded
through the embedding job's code path (jobs/embed_notes.encode_notes); `--inputs image`
blanks the text fields and `--inputs text` the image before encoding. A note left with no
content cannot be retrieved nor query: it counts as a miss. REPORT gets metrics.json,
report.md and recall_at_k.png. Exit 0 on success, 2 with a one-line reason on bad input.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

import pandas as pd
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from jobs.embed_notes import NOTE_COLUMNS, check_model_dir, encode_notes, split_duplicates
from jobs.train import add_split_arguments, held_out_start, read_table
from notellm2_udf.checkpoint import model_version
from notellm2_udf.embed_udf import EncoderSettings
from notellm2_udf.evaluation.recall import (
    DEFAULT_KS,
    partner_ranks,
    query_subsets,
    recall_at,
    retrieval_arrays,
    select_test_pairs,
)
from notellm2_udf.evaluation.report import INPUT_TITLES, write_report
from notellm2_udf.job_runtime import JobInputError, JobSummary, positive_int_arg, run_job
from notellm2_udf.spark_session import SparkSettings, build_spark_session
from notellm2_udf.training.pairs import split_by_date
from schemas import NOTES, RELATED_PAIRS

TEXT_FIELDS = ("title", "content", "topics")


def comma_list(cast):
    def parse(text: str) -> list:
        try:
            return [cast(item) for item in text.split(",") if item]
        except (ValueError, argparse.ArgumentTypeError) as err:
            raise argparse.ArgumentTypeError(str(err)) from None
    return parse


def input_name(text: str) -> str:
    if text not in INPUT_TITLES:
        raise argparse.ArgumentTypeError(f"inputs must be among {list(INPUT_TITLES)}, got {text!r}")
    return text


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pairs", required=True, help="related_pairs Delta table location")
    parser.add_argument("--notes", required=True, help="notes Delta table location")
    parser.add_argument("--model", required=True, help="NoteLLM-2 checkpoint directory")
    parser.add_argument("--report", required=True, help="directory for the report files")
    parser.add_argument("--ks", type=comma_list(positive_int_arg), default=list(DEFAULT_KS),
                        help="comma-separated K values (default 10,20,50,100,1000)")
    parser.add_argument("--inputs", type=comma_list(input_name), default=list(INPUT_TITLES),
                        help="comma-separated among full,image,text (default all three)")
    parser.add_argument("--max-image-pixels", type=positive_int_arg, default=40_000_000)
    add_split_arguments(parser)
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    return run_job("evaluate", lambda summary: evaluate(args, summary))


def evaluate(args: argparse.Namespace, summary: JobSummary) -> None:
    check_model_dir(args.model)
    spark = build_spark_session(SparkSettings(app_name="evaluate notellm2"))
    pairs_df = read_table(spark, args.pairs, RELATED_PAIRS, "related_pairs")
    notes_df = read_table(spark, args.notes, NOTES, "notes")
    held_out_from = held_out_start(pairs_df, args)
    notes_df = split_duplicates(notes_df.where(F.col("dt") >= held_out_from)
                                .select(*NOTE_COLUMNS))[0].cache()
    query_chars_pdf = text_lengths(notes_df).toPandas()
    test_pairs_pdf = test_pairs(split_by_date(pairs_df, held_out_from)[1].toPandas(),
                                set(query_chars_pdf["note_id"]))
    if test_pairs_pdf.empty:
        raise JobInputError(f"no held-out pairs from {held_out_from} with both notes present")
    query_chars = test_pairs_pdf[["note_id"]].merge(query_chars_pdf, on="note_id")["chars"]
    subsets = query_subsets(test_pairs_pdf, query_chars.to_numpy())
    settings = EncoderSettings(args.model, args.max_image_pixels)

    metrics: dict = {"subsets": {}}
    for inputs in args.inputs:
        embeddings_pdf = (encode_notes(with_inputs(notes_df, inputs), settings)
                          .select("note_id", "embedding").toPandas())
        ranks = partner_ranks(*retrieval_arrays(test_pairs_pdf, embeddings_pdf))
        metrics[inputs] = recall_at(ranks, args.ks)
        metrics["subsets"][inputs] = {name: recall_at(ranks[mask], args.ks)
                                      for name, mask in subsets.items()}
        top_k = f"recall@{args.ks[-1]}"
        summary.add(f"{inputs}_{top_k}", round(metrics[inputs][top_k], 4))
    metrics["counts"] = {"test_pairs": len(test_pairs_pdf), "held_out_notes": len(query_chars_pdf),
                         "pool": len(query_chars_pdf) - len(test_pairs_pdf),
                         **{name: int(mask.sum()) for name, mask in subsets.items()}}
    metrics["model_version"] = model_version(args.model)
    metrics["held_out_from"] = held_out_from
    write_report(args.report, metrics)
    summary.add("held_out_from", held_out_from)
    summary.add("test_pairs", len(test_pairs_pdf))


def with_inputs(notes_df: DataFrame, inputs: str) -> DataFrame:
    """The notes as the model sees them under `inputs`: full, image (text blanked) or text
    (image blanked). Column types are kept."""
    blanked = {"full": (), "image": TEXT_FIELDS, "text": ("image",)}[inputs]
    return notes_df.withColumns({name: F.lit(None).cast(notes_df.schema[name].dataType)
                                 for name in blanked})


def text_lengths(notes_df: DataFrame) -> DataFrame:
    """note_id, chars: the length of title + content, the query length of the subsets."""
    return notes_df.select("note_id", (F.length(F.coalesce("title", F.lit(""))) +
                                       F.length(F.coalesce("content", F.lit("")))).alias("chars"))


def test_pairs(held_out_pairs_pdf: pd.DataFrame, note_ids: set[str]) -> pd.DataFrame:
    """The evaluation pairs: both notes among the held-out notes, each note once."""
    present = (held_out_pairs_pdf["note_id"].isin(note_ids)
               & held_out_pairs_pdf["related_note_id"].isin(note_ids))
    return select_test_pairs(held_out_pairs_pdf[present])


if __name__ == "__main__":
    raise SystemExit(main())
