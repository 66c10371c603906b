"""Explicit StructTypes (with nullability) of the contract tables and their DDL.

The DDL is generated from the StructType so the two can never disagree; `ddl` is what
`CREATE TABLE notellm2.<name> (...)` takes, and `docs` in the README repeats it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from pyspark.sql import types as T

DATABASE = "notellm2"
# The producers' completeness signal on `notes`: the table property naming the newest closed
# day (every day up to it is complete: no more appends). docs/OPERATIONS.md has the contract.
CLOSED_THROUGH = "notellm2.closed_through"


@dataclass(frozen=True)
class TableSpec:
    """One contract table: its short name, schema, partition columns and purpose."""

    name: str
    schema: T.StructType
    partition_by: tuple[str, ...]
    comment: str
    properties: Mapping[str, str] = field(default_factory=dict)
    # Columns a table may lack and still meet the contract (e.g. sample-data extras).
    optional_columns: tuple[str, ...] = ()

    @property
    def qualified_name(self) -> str:
        """`notellm2.<name>`: the name SQL users query."""
        return f"{DATABASE}.{self.name}"

    @property
    def ddl(self) -> str:
        """Column list in Spark SQL DDL, e.g. `dt STRING NOT NULL, note_id STRING NOT NULL`."""
        return ", ".join(_column_ddl(field) for field in self.schema.fields)

    @property
    def column_names(self) -> list[str]:
        return [field.name for field in self.schema.fields]

    @property
    def required_columns(self) -> list[str]:
        """The columns every table under this contract must have."""
        return [name for name in self.column_names if name not in self.optional_columns]


def _column_ddl(field: T.StructField) -> str:
    ddl = f"{field.name} {field.dataType.simpleString().upper()}"
    if not field.nullable:
        ddl += " NOT NULL"
    comment = field.metadata.get("comment")
    if comment:
        escaped = comment.replace("\\", "\\\\").replace("'", "\\'")
        ddl += f" COMMENT '{escaped}'"
    return ddl


def _field(name: str, data_type: T.DataType, nullable: bool, comment: str) -> T.StructField:
    return T.StructField(name, data_type, nullable, metadata={"comment": comment})


def _dt_field() -> T.StructField:
    return _field("dt", T.StringType(), False, "partition day, yyyy-MM-dd")


def _run_id_field() -> T.StructField:
    # Added after the first release, hence nullable: older rows have none.
    return _field("run_id", T.StringType(), True,
                  "the run that wrote the row (embeddings and errors of a published day "
                  "carry the same one)")


NOTES = TableSpec(
    name="notes",
    schema=T.StructType(
        [
            _dt_field(),
            _field("note_id", T.StringType(), False, "note identifier"),
            _field("title", T.StringType(), True, "note title"),
            _field("content", T.StringType(), True, "note body; may hold #hashtag# topics"),
            _field(
                "topics", T.ArrayType(T.StringType(), containsNull=True), True, "topic tags"
            ),
            _field("image", T.BinaryType(), True, "encoded JPEG/PNG/GIF/WebP bytes"),
        ]
    ),
    partition_by=("dt",),
    comment="Input notes, one partition per day.",
)

NOTE_EMBEDDINGS = TableSpec(
    name="note_embeddings",
    schema=T.StructType(
        [
            _dt_field(),
            _field("note_id", T.StringType(), False, "note identifier"),
            _field(
                "embedding",
                T.ArrayType(T.FloatType()),
                False,
                "multimodal note embedding, unit L2 norm",
            ),
            _field(
                "visual_embedding",
                T.ArrayType(T.FloatType()),
                True,
                "image-side embedding (mICL visual representation), unit L2 norm",
            ),
            _field("model_version", T.StringType(), False, "hash of the model checkpoint"),
            _field("image_ok", T.BooleanType(), False, "the image was decoded and used"),
            _run_id_field(),
        ]
    ),
    partition_by=("dt",),
    comment="NoteLLM-2 embeddings of each day's notes, one set per model version.",
)

EMBEDDING_ERRORS = TableSpec(
    name="embedding_errors",
    schema=T.StructType(
        [
            _dt_field(),
            _field("note_id", T.StringType(), True, "note identifier (null if it was null)"),
            _field("stage", T.StringType(), False, "where it failed: image, input, duplicate"),
            _field("error", T.StringType(), False, "why, in one line"),
            _field("model_version", T.StringType(), True,
                   "the model of the run that wrote the row (null: written before versions "
                   "keyed the rows)"),
            _run_id_field(),
        ]
    ),
    partition_by=("dt",),
    comment="Notes (or parts of notes) that could not be embedded, and why.",
)

RELATED_NOTES = TableSpec(
    name="related_notes",
    schema=T.StructType(
        [
            _dt_field(),
            _field("note_id", T.StringType(), False, "query note"),
            _field("rank", T.IntegerType(), False, "1 = nearest"),
            _field("related_note_id", T.StringType(), False, "a related note"),
            _field("score", T.FloatType(), False, "inner product of the two embeddings"),
            _field("model_version", T.StringType(), False, "hash of the model checkpoint"),
        ]
    ),
    partition_by=("dt",),
    comment="Top related notes of every note, by day.",
    # File statistics on the first two data columns only (note_id, rank; dt is a partition
    # column, not in the files): min/max of the other columns skip nothing yet nearly double
    # the write time of this k-rows-per-note table.
    properties={"delta.dataSkippingNumIndexedCols": "2"},
)

RELATED_PAIRS = TableSpec(
    name="related_pairs",
    schema=T.StructType(
        [
            _field("note_id", T.StringType(), False, "first note of the pair (the query)"),
            _field("related_note_id", T.StringType(), False, "its behaviour partner"),
            _field("score", T.DoubleType(), False, "co-click score, sum of 1/N_u"),
            _field("dt", T.StringType(), False, "day of the behaviour, yyyy-MM-dd"),
            _field(
                "pair_kind",
                T.StringType(),
                True,
                "sample data only: 'text' or 'image', which modality defines the pair",
            ),
        ]
    ),
    partition_by=("dt",),
    comment="Behaviour pairs (viewed A then clicked B) for training and evaluation.",
    optional_columns=("pair_kind",),
)

TABLES: dict[str, TableSpec] = {
    spec.name: spec
    for spec in (NOTES, NOTE_EMBEDDINGS, EMBEDDING_ERRORS, RELATED_NOTES, RELATED_PAIRS)
}
