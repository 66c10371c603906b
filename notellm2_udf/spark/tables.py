"""Reading the contract tables: a Delta table with the contract's columns, or JobInputError."""

from __future__ import annotations

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from notellm2_udf.days import validate_day
from notellm2_udf.errors import JobInputError
from schemas import TableSpec


def require_columns(df: DataFrame, spec: TableSpec, what: str) -> None:
    """Raise JobInputError naming the required contract columns `df` lacks (a contract's
    optional columns may be absent)."""
    missing = [name for name in spec.required_columns if name not in df.columns]
    if missing:
        raise JobInputError(f"{what} lacks contract columns of {spec.name}: {missing}")


def read_table(spark: SparkSession, location: str, spec: TableSpec,
               what: str | None = None) -> DataFrame:
    """The Delta table at `location`, checked against `spec`'s contract columns."""
    what = what or f"{spec.name} table {location}"
    try:
        table_df = spark.read.format("delta").load(location)
    except Exception as err:  # AnalysisException: not a Delta table, path missing
        raise JobInputError(f"cannot read {what}: {first_line(err)}") from None
    require_columns(table_df, spec, what)
    return table_df


def read_table_day(spark: SparkSession, location: str, spec: TableSpec, day: str,
                   what: str | None = None) -> DataFrame:
    """One `dt` partition of a contract table (a pruned scan: only that day's files)."""
    return read_table(spark, location, spec, what).where(F.col("dt") == validate_day(day))


def first_line(err: Exception) -> str:
    """The first line of an exception's message (Spark's run to dozens of lines)."""
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__
