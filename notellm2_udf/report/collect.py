"""Collect what `notellm2 report` shows from the registered tables (small results only)."""

from __future__ import annotations

from pyspark.sql import DataFrame, SparkSession, Window
from pyspark.sql import functions as F

from notellm2_udf.report.content import (
    HISTOGRAM_BINS,
    NoteCard,
    QueryPanel,
    ReportData,
    bin_width,
    histogram_from_counts,
    thumbnail_data_uri,
)

ERROR_EXAMPLES = 10


def collect_report_data(spark: SparkSession, database: str, day: str, *, samples: int = 8,
                        top: int = 5, seed: int = 0, thumb_px: int = 96) -> ReportData:
    """Raises LookupError naming a table that is not registered."""
    tables = {}
    for name in ("notes", "note_embeddings", "embedding_errors", "related_notes"):
        qualified = f"{database}.{name}"
        if not spark.catalog.tableExists(qualified):
            raise LookupError(f"table {qualified} is not registered (run the daily jobs first)")
        tables[name] = spark.table(qualified)
    related_day_df = tables["related_notes"].where(F.col("dt") == day)
    # Every collect here is bounded: one row per version, per (day, stage) of the tables'
    # history (six stages), ERROR_EXAMPLES rows, or one row per day.
    return ReportData(
        day=day,
        model_versions=sorted(row[0] for row in
                              related_day_df.select("model_version").distinct().collect()),
        day_counts=day_counts(tables["notes"], tables["note_embeddings"],
                              tables["embedding_errors"], tables["related_notes"]),
        error_counts=_rows(tables["embedding_errors"].groupBy("dt", "stage")
                           .agg(F.count(F.lit(1)).alias("errors")).orderBy("dt", "stage")),
        error_examples=_rows(tables["embedding_errors"].where(F.col("dt") == day)
                             .orderBy("stage", "note_id").limit(ERROR_EXAMPLES)),
        histogram=score_histogram(related_day_df),
        panels=query_panels(tables["notes"], related_day_df, samples=samples, top=top,
                            seed=seed, thumb_px=thumb_px),
    )


def day_counts(notes_df: DataFrame, embeddings_df: DataFrame, errors_df: DataFrame,
               related_df: DataFrame) -> list[dict]:
    """One row per dt of any table: notes, embedded, with_image, errors, queries, related
    rows, mean rank-1 score."""
    per_day = [
        notes_df.groupBy("dt").agg(F.count(F.lit(1)).alias("notes")),
        embeddings_df.groupBy("dt").agg(
            F.count(F.lit(1)).alias("embedded"),
            F.sum(F.col("image_ok").cast("int")).alias("with_image")),
        errors_df.groupBy("dt").agg(F.count(F.lit(1)).alias("errors")),
        related_df.groupBy("dt").agg(
            F.countDistinct("note_id").alias("queries"),
            F.count(F.lit(1)).alias("related_rows"),
            F.avg(F.when(F.col("rank") == 1, F.col("score"))).alias("mean_top1_score")),
    ]
    joined_df = per_day[0]
    for counts_df in per_day[1:]:
        joined_df = joined_df.join(counts_df, "dt", "full_outer")
    return _rows(joined_df.na.fill(0).orderBy("dt"))


def score_histogram(related_df: DataFrame,
                    bins: int = HISTOGRAM_BINS) -> list[tuple[float, float, int]]:
    """Equal-width bins over [min, max] of the scores: (low, high, count). Two Spark
    aggregations; only the min, the max and one count per bin reach the driver."""
    score = F.col("score").cast("double")
    low, high = related_df.agg(F.min(score), F.max(score)).first()
    if low is None:
        return []
    index = F.least(((score - F.lit(low)) / F.lit(bin_width(low, high, bins))).cast("int"),
                    F.lit(bins - 1))
    # Bounded: one row per bin.
    counts = dict(related_df.where(score.isNotNull()).groupBy(index).count().collect())
    return histogram_from_counts(low, high, counts, bins)


def query_panels(notes_df: DataFrame, related_day_df: DataFrame, *, samples: int, top: int,
                 seed: int, thumb_px: int) -> list[QueryPanel]:
    """`samples` query notes (smallest hash(note_id, seed): stable) with their top related.
    Bounded: samples x (top + 1) notes reach the driver (--samples, --top)."""
    queries = [row[0] for row in related_day_df.select("note_id").distinct()
               .orderBy(F.xxhash64("note_id", F.lit(seed))).limit(samples).collect()]
    related = (related_day_df.where(F.col("note_id").isin(queries) & (F.col("rank") <= top))
               .select("note_id", "rank", "related_note_id", "score").collect())
    ids = set(queries) | {row["related_note_id"] for row in related}
    # The newest copy of each note: related notes may come from earlier days of the window.
    latest = Window.partitionBy("note_id").orderBy(F.col("dt").desc())
    notes = {row["note_id"]: row for row in
             notes_df.where(F.col("note_id").isin(list(ids)))
             .withColumn("copy", F.row_number().over(latest)).where("copy = 1")
             .select("note_id", "title", "image").collect()}

    def card(note_id: str, rank: int | None = None, score: float | None = None) -> NoteCard:
        note = notes.get(note_id)
        return NoteCard(note_id, note["title"] if note else None,
                        thumbnail_data_uri(note["image"], thumb_px) if note else None,
                        rank, score)

    return [
        QueryPanel(card(query), [card(row["related_note_id"], row["rank"], row["score"])
                                 for row in sorted((r for r in related if r["note_id"] == query),
                                                   key=lambda r: r["rank"])])
        for query in sorted(queries)
    ]


def _rows(df: DataFrame) -> list[dict]:
    return [row.asDict() for row in df.collect()]
