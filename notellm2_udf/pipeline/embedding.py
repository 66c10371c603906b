"""Notes -> encoder rows on executors -> the rows of `note_embeddings` and `embedding_errors`."""

from __future__ import annotations

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from notellm2_udf.spark.embed_udf import (
    ENCODED_SCHEMA,
    EncoderSettings,
    load_encoder,
    make_encode_partition,
)


def encode_notes(notes_df: DataFrame, settings: EncoderSettings,
                 factory=load_encoder) -> DataFrame:
    """Run the encoder on executors: one ENCODED_SCHEMA row per note."""
    return notes_df.mapInPandas(make_encode_partition(settings, factory), ENCODED_SCHEMA)


def embeddings_rows(encoded_df: DataFrame, day: str) -> DataFrame:
    """`note_embeddings` rows: every note with usable text or image."""
    return encoded_df.where("has_content").select(
        F.lit(day).alias("dt"), "note_id", "embedding", "visual_embedding", "model_version",
        "image_ok")


def error_rows(encoded_df: DataFrame, day: str) -> DataFrame:
    """`embedding_errors` rows: refused images (the note was still embedded from its text) and
    notes with neither usable text nor image (not embedded)."""
    image_df = encoded_df.where("has_content AND image_error IS NOT NULL").select(
        F.lit(day).alias("dt"), "note_id", F.lit("image").alias("stage"),
        F.concat(F.lit("image refused, embedded from text: "), "image_error").alias("error"))
    empty_df = encoded_df.where("NOT has_content").select(
        F.lit(day).alias("dt"), "note_id", F.lit("input").alias("stage"),
        F.concat(F.lit("no usable text or image"),
                 F.coalesce(F.concat(F.lit(" (image refused: "), "image_error", F.lit(")")),
                            F.lit(""))).alias("error"))
    return image_df.unionByName(empty_df)
