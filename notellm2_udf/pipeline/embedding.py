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
