"""Evaluate a NoteLLM-2 checkpoint on held-out related pairs: Recall@K, subsets, modality ablation.

    spark-submit jobs/evaluate.py --pairs URI --notes URI --model DIR_OR_URI --report DIR \
        [--ks 10,20,50,100,1000] [--inputs full,image,text,text_no_image] \
        [--holdout-days 1 | --held-out-from yyyy-MM-dd | --all-pairs] [--max-image-pixels N] \
        [--batch-tokens N] [--compile] [--prepare-processes N] [--image-decode auto|cpu|gpu] \
        [--ranking-block-rows 8192] [--ranking-chunk-rows 256] [--selection-local-pairs 100000]

The paper's protocol: test pairs = the held-out pairs (the same split as jobs/train.py by
default; --all-pairs: every pair of the table, for a table holding only a test period)
reduced so that each note appears once; query = first note of a pair; pool = every note of
the test pairs (posted on any day) except the queries; inner-product ranking; Recall@K.
Subsets as the authors': short/long queries and short/long targets, each with its own pair
selection and its own pool. Notes are encoded through the embedding job's code path
(notellm2_udf.embedding.day.encode_notes); `--inputs image` blanks the text fields;
`--inputs text` blanks the image and feeds an all-zero image (the authors' text-only
protocol); `--inputs text_no_image` leaves the image segment out (ours). A note left with no
content cannot be retrieved nor query: it counts as a miss. REPORT gets
metrics.json, report.md and recall_at_k.png. Exit 0 on success, 2 with a one-line reason on
bad input.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from dataclasses import dataclass, replace

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from notellm2_udf.embedding.day import encode_notes
from notellm2_udf.errors import JobInputError
from notellm2_udf.evaluation.metrics_report import INPUT_TITLES, write_report
from notellm2_udf.evaluation.protocol import evaluate_embeddings, test_pair_sets
from notellm2_udf.evaluation.ranking import RankingSettings
from notellm2_udf.evaluation.recall import DEFAULT_KS
from notellm2_udf.inference.settings import EncoderSettings
from notellm2_udf.inputs.notes import NOTE_COLUMNS, split_duplicates
from notellm2_udf.job.runtime import JobSummary, job_main
from notellm2_udf.registry.pinning import pin_model
from notellm2_udf.settings.declared import option, required
from notellm2_udf.settings.shared import table_setting
from notellm2_udf.settings.values import comma_list, positive_int_arg
from notellm2_udf.spark.persist import persist_on_disk
from notellm2_udf.spark.tables import read_table
from notellm2_udf.training.pairs import HeldOutSplit, held_out_start, split_by_date
from schemas import NOTES, RELATED_PAIRS

TEXT_FIELDS = ("title", "content", "topics")


def input_name(text: str) -> str:
    if text not in INPUT_TITLES:
        raise argparse.ArgumentTypeError(
            f"inputs must be among {list(INPUT_TITLES)}, got {text!r}")
    return text


@dataclass(frozen=True)
class EvaluateSettings:
    """One run of the job: tables, model, report directory, what to measure."""

    pairs: str = table_setting("related_pairs")
    notes: str = table_setting("notes")
    model: str = required(help="NoteLLM-2 checkpoint directory or URI")
    report: str = required(help="directory for the report files")
    ks: tuple[int, ...] = option(DEFAULT_KS, parse=comma_list(positive_int_arg),
                                 help="comma-separated K values")
    inputs: tuple[str, ...] = option(tuple(INPUT_TITLES), parse=comma_list(input_name),
                                     help="comma-separated among " + ",".join(INPUT_TITLES))
    all_pairs: bool = option(False, help="every pair of --pairs is a test pair (no held-out "
                                         "split)")
    split: HeldOutSplit = HeldOutSplit()
    encoder: EncoderSettings = EncoderSettings()
    ranking: RankingSettings = RankingSettings()


# How each input kind feeds a note without a usable image (overriding the checkpoint's).
MISSING_IMAGE_OF_INPUTS = {"text": "zero_image", "text_no_image": "learned_vector"}


def main(argv: Sequence[str] | None = None) -> int:
    return job_main("evaluate", EvaluateSettings, run, argv, __doc__)


def run(spark: SparkSession, settings: EvaluateSettings, summary: JobSummary) -> None:
    """Encode the test pairs' notes once per input kind, rank, write the report."""
    # Resolved once on the driver: a local path or any URI the executors' cache copies.
    pinned = pin_model(model_dir=settings.model, models_root=None, day="")
    pairs_df = read_table(spark, settings.pairs, RELATED_PAIRS)
    notes_df = read_table(spark, settings.notes, NOTES)
    if settings.all_pairs:
        held_out_from, test_pairs_df = None, pairs_df
    else:
        held_out_from = held_out_start(pairs_df, settings.split)
        test_pairs_df = split_by_date(pairs_df, held_out_from)[1]
    pair_note_ids_df = (test_pairs_df.select("note_id")
                        .union(test_pairs_df.select(F.col("related_note_id").alias("note_id")))
                        .distinct())
    notes_df = persist_on_disk(split_duplicates(
        notes_df.join(pair_note_ids_df, "note_id", "left_semi").select(*NOTE_COLUMNS))[0])
    ranking = settings.ranking
    pair_sets = test_pair_sets(present_pairs(test_pairs_df, notes_df), text_lengths(notes_df),
                               ranking)
    counts = {name: pair_set_df.count() for name, pair_set_df in pair_sets.items()}
    if not counts["all"]:
        raise JobInputError(f"no test pairs{f' from {held_out_from}' if held_out_from else ''} "
                            "with both notes present")
    ks = list(settings.ks)

    metrics: dict = {"subsets": {}}
    for inputs in settings.inputs:
        encoder_settings = replace(settings.encoder,
                                   missing_image=MISSING_IMAGE_OF_INPUTS.get(inputs))
        # Kept on executors' disk: every test-pair set is ranked against it.
        embeddings_df = persist_on_disk(encode_notes(with_inputs(notes_df, inputs), pinned,
                                                     encoder_settings)
                                        .select("note_id", "embedding"))
        metrics[inputs], metrics["subsets"][inputs] = evaluate_embeddings(
            pair_sets, embeddings_df, ks, ranking)
        embeddings_df.unpersist()
        top_k = f"recall@{ks[-1]}"
        summary.add(f"{inputs}_{top_k}", round(metrics[inputs][top_k], 4))
    test_notes = notes_df.count()
    metrics["counts"] = {"test_pairs": counts["all"], "test_notes": test_notes,
                         "pool": test_notes - counts["all"],
                         **{name: count for name, count in counts.items() if name != "all"}}
    metrics["model_version"] = pinned.version
    metrics["held_out_from"] = held_out_from
    write_report(settings.report, metrics)
    summary.add("held_out_from", held_out_from)
    summary.add("test_pairs", counts["all"])


def with_inputs(notes_df: DataFrame, inputs: str) -> DataFrame:
    """The notes as the model sees them under `inputs`: full, image (text blanked) or text
    (image blanked). Column types are kept."""
    blanked = {"full": (), "image": TEXT_FIELDS, "text": ("image",),
               "text_no_image": ("image",)}[inputs]
    return notes_df.withColumns({name: F.lit(None).cast(notes_df.schema[name].dataType)
                                 for name in blanked})


def text_lengths(notes_df: DataFrame) -> DataFrame:
    """note_id, chars: the length of title + content, the query length of the subsets."""
    return notes_df.select("note_id", (F.length(F.coalesce("title", F.lit(""))) +
                                       F.length(F.coalesce("content", F.lit("")))).alias("chars"))


def present_pairs(held_out_pairs_df: DataFrame, notes_df: DataFrame) -> DataFrame:
    """The held-out pairs whose two notes are in the notes table."""
    note_ids_df = notes_df.select("note_id")
    return (held_out_pairs_df.join(note_ids_df, "note_id", "left_semi")
            .join(note_ids_df.withColumnRenamed("note_id", "related_note_id"),
                  "related_note_id", "left_semi"))


if __name__ == "__main__":
    raise SystemExit(main())
