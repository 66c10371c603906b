"""Notes -> encoder rows on executors -> the rows of `note_embeddings` and `embedding_errors`,
and the write of one day of both for one pinned model version."""

from __future__ import annotations

from dataclasses import dataclass

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from notellm2_udf.embedding.udf import ENCODED_SCHEMA, load_encoder, make_encode_partition
from notellm2_udf.inference.settings import EncoderSettings
from notellm2_udf.inputs.notes import drop_invalid_utf8, split_duplicates
from notellm2_udf.registry.versions import PinnedModel
from notellm2_udf.spark.delta_io import replace_days
from notellm2_udf.spark.persist import persist_on_disk
from schemas import EMBEDDING_ERRORS, NOTE_EMBEDDINGS


@dataclass(frozen=True)
class EmbedTarget:
    """Where a day's rows go and which run writes them."""

    embeddings: str
    errors: str
    run_id: str


@dataclass(frozen=True)
class DayCounts:
    notes: int
    embedded: int
    with_image: int
    workers: int
    input_wait_s: float = 0.0
    encode_s: float = 0.0


def encode_notes(notes_df: DataFrame, model: PinnedModel, settings: EncoderSettings,
                 factory=load_encoder) -> DataFrame:
    """Run the encoder on executors: one ENCODED_SCHEMA row per note."""
    return notes_df.mapInPandas(make_encode_partition(model, settings, factory),
                                ENCODED_SCHEMA)


EMBEDDED = "has_content AND model_error IS NULL"


def embeddings_rows(encoded_df: DataFrame, day: str) -> DataFrame:
    """`note_embeddings` rows: every note with usable text or image that the model encoded."""
    return encoded_df.where(EMBEDDED).select(
        F.lit(day).alias("dt"), "note_id", "embedding", "visual_embedding", "model_version",
        "image_ok")


def error_rows(encoded_df: DataFrame, day: str) -> DataFrame:
    """`embedding_errors` rows, one per problem of a note (stage: what failed):
    image  the image was refused; the note was embedded from its text
    text   the text was unusable; the note was embedded from its image
    model  the model failed on this note alone; it was quarantined (not embedded: its
           image or text problems, if any, are not repeated)
    input  neither usable text nor image (not embedded); says why the image was refused
    """
    def rows(condition: str, stage: str, error) -> DataFrame:
        return encoded_df.where(condition).select(
            F.lit(day).alias("dt"), "note_id", F.lit(stage).alias("stage"), error.alias("error"))

    empty_reason = F.concat(
        F.lit("no usable text or image"),
        F.coalesce(F.concat(F.lit(" (image refused: "), "image_error", F.lit(")")), F.lit("")),
        F.coalesce(F.concat(F.lit(" (text refused: "), "text_error", F.lit(")")), F.lit("")))
    return (
        rows(f"{EMBEDDED} AND image_error IS NOT NULL", "image",
             F.concat(F.lit("image refused, embedded from text: "), "image_error"))
        .unionByName(rows(f"{EMBEDDED} AND text_error IS NOT NULL", "text",
                          F.concat(F.lit("text refused, embedded from image: "), "text_error")))
        .unionByName(rows("model_error IS NOT NULL", "model",
                          F.concat(F.lit("quarantined, not embedded: "), "model_error")))
        .unionByName(rows("NOT has_content", "input", empty_reason))
    )


def embed_day(notes_df: DataFrame, day: str, model: PinnedModel, encoder: EncoderSettings,
              target: EmbedTarget, partitions: int) -> DayCounts:
    """Encode the day's notes with the pinned model and replace that version's rows of the day
    in both tables (an empty day replaces them with nothing).

    Embeddings are committed before errors: a run killed in between leaves notes in neither
    table, which `window_days.account_days` reports and the next run of the day redoes.
    """
    version = model.version
    unique_df, duplicate_errors_df = split_duplicates(notes_df)
    unique_df, utf8_errors_df = drop_invalid_utf8(unique_df)
    encoded_df = persist_on_disk(encode_notes(unique_df.repartition(partitions, "note_id"),
                                              model, encoder))
    try:
        stamp = {"model_version": F.lit(version), "run_id": F.lit(target.run_id)}
        embeddings_df = embeddings_rows(encoded_df, day).withColumns(stamp)
        errors_df = (error_rows(encoded_df, day).unionByName(duplicate_errors_df)
                     .unionByName(utf8_errors_df).withColumns(stamp))
        replace_days(embeddings_df, NOTE_EMBEDDINGS, target.embeddings, day,
                     model_version=version)
        replace_days(errors_df, EMBEDDING_ERRORS, target.errors, day, model_version=version)
        counts = encoded_df.agg(
            F.count(F.lit(1)).alias("unique"),
            F.sum(F.expr(EMBEDDED).cast("int")).alias("embedded"),
            F.sum(F.col("image_ok").cast("int")).alias("with_image"),
            F.countDistinct("worker_pid").alias("workers"),
            F.sum("input_wait_s").alias("input_wait_s"),
            F.sum("encode_s").alias("encode_s"),
        ).first()
        return DayCounts(notes=counts["unique"] or 0, embedded=counts["embedded"] or 0,
                         with_image=counts["with_image"] or 0, workers=counts["workers"] or 0,
                         input_wait_s=counts["input_wait_s"] or 0.0,
                         encode_s=counts["encode_s"] or 0.0)
    finally:
        encoded_df.unpersist()
