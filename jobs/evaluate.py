"""Evaluate a NoteLLM-2 checkpoint on held-out related pairs: Recall@K, subsets, modality ablation.

    spark-submit jobs/evaluate.py --pairs URI --notes URI --model DIR --report DIR \
        [--ks 10,20,50,100,1000] [--inputs full,image,text] \
        [--holdout-days 1 | --held-out-from yyyy-MM-dd] [--max-image-pixels N]

The paper's protocol: held-out pairs (the same split as jobs/train.py by default) reduced so
that each note appears once; query = first note of a pair; pool = every held-out note (notes
of the held-out days) except the queries; inner-product ranking; Recall@K. Notes are encoded
through the embedding job's code path (notellm2_udf.pipeline.embedding.encode_notes);
`--inputs image` blanks the text fields and `--inputs text` the image before encoding. A
note left with no content cannot be retrieved nor query: it counts as a miss. REPORT gets
metrics.json, report.md and recall_at_k.png. Exit 0 on success, 2 with a one-line reason on
bad input.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from dataclasses import dataclass

import pandas as pd
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from notellm2_udf.errors import JobInputError
from notellm2_udf.evaluation.metrics_report import INPUT_TITLES, write_report
from notellm2_udf.evaluation.recall import (
    DEFAULT_KS,
    partner_ranks,
    query_subsets,
    recall_at,
    retrieval_arrays,
    select_test_pairs,
)
from notellm2_udf.model.images import DEFAULT_MAX_PIXELS
from notellm2_udf.model.version import model_version
from notellm2_udf.pipeline.embedding import encode_notes
from notellm2_udf.pipeline.model_dir import check_model_dir
from notellm2_udf.pipeline.notes import NOTE_COLUMNS, split_duplicates
from notellm2_udf.spark.embed_udf import EncoderSettings
from notellm2_udf.spark.job_args import add_held_out_arguments, comma_list, positive_int_arg
from notellm2_udf.spark.job_runtime import JobSummary, run_job
from notellm2_udf.spark.session import SparkSettings, build_spark_session
from notellm2_udf.spark.tables import read_table
from notellm2_udf.training.pairs import held_out_start, split_by_date
from schemas import NOTES, RELATED_PAIRS

TEXT_FIELDS = ("title", "content", "topics")


@dataclass(frozen=True)
class EvaluateSettings:
    """One run of the job: tables, model, report directory, what to measure."""

    pairs: str
    notes: str
    model: str
    report: str
    ks: tuple[int, ...] = DEFAULT_KS
    inputs: tuple[str, ...] = tuple(INPUT_TITLES)
    max_image_pixels: int = DEFAULT_MAX_PIXELS
    holdout_days: int = 1
    held_out_from: str | None = None


def input_name(text: str) -> str:
    if text not in INPUT_TITLES:
        raise argparse.ArgumentTypeError(f"inputs must be among {list(INPUT_TITLES)}, got {text!r}")
    return text


def parse_args(argv: Sequence[str] | None) -> EvaluateSettings:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pairs", required=True, help="related_pairs Delta table location")
    parser.add_argument("--notes", required=True, help="notes Delta table location")
    parser.add_argument("--model", required=True, help="NoteLLM-2 checkpoint directory")
    parser.add_argument("--report", required=True, help="directory for the report files")
    parser.add_argument("--ks", type=comma_list(positive_int_arg), default=list(DEFAULT_KS),
                        help="comma-separated K values (default 10,20,50,100,1000)")
    parser.add_argument("--inputs", type=comma_list(input_name), default=list(INPUT_TITLES),
                        help="comma-separated among full,image,text (default all three)")
    parser.add_argument("--max-image-pixels", type=positive_int_arg, default=DEFAULT_MAX_PIXELS,
                        help=f"images with more pixels are refused (default {DEFAULT_MAX_PIXELS})")
    add_held_out_arguments(parser)
    args = parser.parse_args(argv)
    return EvaluateSettings(
        pairs=args.pairs, notes=args.notes, model=args.model, report=args.report,
        ks=tuple(args.ks), inputs=tuple(args.inputs), max_image_pixels=args.max_image_pixels,
        holdout_days=args.holdout_days, held_out_from=args.held_out_from)


def main(argv: Sequence[str] | None = None) -> int:
    settings = parse_args(argv)

    def body(summary: JobSummary) -> None:
        spark = build_spark_session(SparkSettings(app_name="evaluate notellm2"))
        run(spark, settings, summary)

    return run_job("evaluate", body)


def run(spark: SparkSession, settings: EvaluateSettings, summary: JobSummary) -> None:
    """Encode the held-out notes once per input kind, rank, write the report."""
    check_model_dir(settings.model)
    pairs_df = read_table(spark, settings.pairs, RELATED_PAIRS)
    notes_df = read_table(spark, settings.notes, NOTES)
    held_out_from = held_out_start(pairs_df, held_out_from=settings.held_out_from,
                                   holdout_days=settings.holdout_days)
    notes_df = split_duplicates(notes_df.where(F.col("dt") >= held_out_from)
                                .select(*NOTE_COLUMNS))[0].cache()
    query_chars_pdf = text_lengths(notes_df).toPandas()
    test_pairs_pdf = test_pairs(split_by_date(pairs_df, held_out_from)[1].toPandas(),
                                set(query_chars_pdf["note_id"]))
    if test_pairs_pdf.empty:
        raise JobInputError(f"no held-out pairs from {held_out_from} with both notes present")
    query_chars = test_pairs_pdf[["note_id"]].merge(query_chars_pdf, on="note_id")["chars"]
    subsets = query_subsets(test_pairs_pdf, query_chars.to_numpy())
    encoder_settings = EncoderSettings(settings.model, settings.max_image_pixels)
    ks = list(settings.ks)

    metrics: dict = {"subsets": {}}
    for inputs in settings.inputs:
        embeddings_pdf = (encode_notes(with_inputs(notes_df, inputs), encoder_settings)
                          .select("note_id", "embedding").toPandas())
        ranks = partner_ranks(*retrieval_arrays(test_pairs_pdf, embeddings_pdf))
        metrics[inputs] = recall_at(ranks, ks)
        metrics["subsets"][inputs] = {name: recall_at(ranks[mask], ks)
                                      for name, mask in subsets.items()}
        top_k = f"recall@{ks[-1]}"
        summary.add(f"{inputs}_{top_k}", round(metrics[inputs][top_k], 4))
    metrics["counts"] = {"test_pairs": len(test_pairs_pdf), "held_out_notes": len(query_chars_pdf),
                         "pool": len(query_chars_pdf) - len(test_pairs_pdf),
                         **{name: int(mask.sum()) for name, mask in subsets.items()}}
    metrics["model_version"] = model_version(settings.model)
    metrics["held_out_from"] = held_out_from
    write_report(settings.report, metrics)
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
