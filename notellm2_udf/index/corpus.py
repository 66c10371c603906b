"""The corpus of a day: embeddings in the window ending at that day, latest row per note.

The one definition of the window corpus: build_index indexes it, related_notes searches it
and validate_related checks the lists against it.
"""

from __future__ import annotations

from dataclasses import dataclass

from pyspark.sql import DataFrame, SparkSession, Window
from pyspark.sql import functions as F

from notellm2_udf.days import validate_day, window_bounds
from notellm2_udf.errors import JobInputError
from notellm2_udf.spark.tables import read_table
from schemas import NOTE_EMBEDDINGS


def read_embeddings(spark: SparkSession, uri: str) -> DataFrame:
    """The note_embeddings Delta table at `uri`; JobInputError if absent or not the contract."""
    return read_table(spark, uri, NOTE_EMBEDDINGS, f"--embeddings {uri}")


def latest_embeddings(embeddings_df: DataFrame, *, day: str, window_days: int,
                      model_version: str | None = None) -> DataFrame:
    """One row per note_id: its latest embedding with dt in the window ending at `day` (of
    `model_version` only, when given: the table holds one set of rows per version).

    Ties on dt (a note embedded twice in one day) are broken by model_version, then
    embedding, so the choice does not depend on partitioning.
    """
    first, last = window_bounds(day=day, window_days=window_days)
    newest_first = Window.partitionBy("note_id").orderBy(
        F.col("dt").desc(), F.col("model_version").desc(), F.col("embedding").desc()
    )
    if model_version is not None:
        embeddings_df = embeddings_df.where(F.col("model_version") == model_version)
    return (
        embeddings_df.where(F.col("dt").between(first, last))
        .withColumn("_newest", F.row_number().over(newest_first))
        .where(F.col("_newest") == 1)
        .drop("_newest")
    )


def new_notes(corpus_df: DataFrame, *, day: str) -> DataFrame:
    """Notes whose latest row is from `day` itself (the `--queries new` set)."""
    return corpus_df.where(F.col("dt") == validate_day(day))


@dataclass(frozen=True)
class CorpusFacts:
    rows: int
    model_versions: tuple[str, ...]
    dimensions: tuple[int, ...]


def corpus_facts(corpus_df: DataFrame) -> CorpusFacts:
    """Row count, distinct model versions and embedding lengths, in one pass."""
    row = corpus_df.agg(
        F.count(F.lit(1)).alias("rows"),
        F.array_sort(F.collect_set("model_version")).alias("versions"),
        F.array_sort(F.collect_set(F.size("embedding"))).alias("dims"),
    ).first()
    return CorpusFacts(row["rows"], tuple(row["versions"]), tuple(row["dims"]))


def check_corpus(facts: CorpusFacts, *, day: str, window_days: int) -> tuple[str, int]:
    """Return (model_version, dimension) of a usable corpus; JobInputError otherwise."""
    first, last = window_bounds(day=day, window_days=window_days)
    if facts.rows == 0:
        raise JobInputError(f"no embeddings with dt in [{first}, {last}]")
    if len(facts.model_versions) != 1:
        raise JobInputError(
            f"embeddings with dt in [{first}, {last}] come from {len(facts.model_versions)} "
            f"model versions {list(facts.model_versions)}: an index mixing models is "
            "meaningless; re-embed the window with one model first")
    if len(facts.dimensions) != 1 or facts.dimensions[0] < 1:
        raise JobInputError(f"embeddings have lengths {list(facts.dimensions)}, expected one")
    return facts.model_versions[0], facts.dimensions[0]
