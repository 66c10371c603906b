"""Thin Delta Lake I/O for the contract tables: create, replace one day, register by name."""

from __future__ import annotations

from pathlib import Path

from delta.tables import DeltaTable
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from notellm2_udf.days import validate_day
from schemas import DATABASE, TableSpec


def _sql_string(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def ensure_table(spark: SparkSession, spec: TableSpec, location: str) -> None:
    """Create the Delta table at `location` with the contract schema, if it does not exist,
    and give it the spec's table properties (also when it was created without them)."""
    builder = (
        DeltaTable.createIfNotExists(spark)
        .location(location)
        .addColumns(spec.schema)
        .partitionedBy(*spec.partition_by)
        .comment(spec.comment)
    )
    for key, value in spec.properties.items():
        builder = builder.property(key, value)
    table = builder.execute()
    _add_missing_columns(spark, spec, location, table.toDF().columns)
    current = table.detail().first()["properties"] if spec.properties else {}
    set_properties(spark, location, {key: value for key, value in spec.properties.items()
                                     if current.get(key) != value})


def set_properties(spark: SparkSession, location: str, properties: dict[str, str]) -> None:
    """Set table properties of the Delta table at `location` (one commit; none if empty)."""
    if properties:
        settings = ", ".join(f"{_sql_string(k)} = {_sql_string(v)}"
                             for k, v in properties.items())
        spark.sql(f"ALTER TABLE delta.`{location}` SET TBLPROPERTIES ({settings})")


def _add_missing_columns(spark: SparkSession, spec: TableSpec, location: str,
                         columns: list[str]) -> None:
    """Columns the contract gained since the table was created (all nullable, so old rows
    read as null): the migration of a table written by an older release."""
    added = [field for field in spec.schema.fields if field.name not in columns]
    if added:
        spark.sql(f"ALTER TABLE delta.`{location}` ADD COLUMNS ("
                  + ", ".join(f"{f.name} {f.dataType.simpleString()}" for f in added) + ")")


def conform(df: DataFrame, spec: TableSpec) -> DataFrame:
    """Select the contract columns in order, cast to the contract types.

    Raises ValueError naming any contract column the DataFrame lacks.
    """
    missing = [name for name in spec.column_names if name not in df.columns]
    if missing:
        raise ValueError(f"{spec.name}: missing contract columns {missing}")
    return df.select(
        *[F.col(field.name).cast(field.dataType).alias(field.name) for field in spec.schema]
    )


def replace_days(
    df: DataFrame, spec: TableSpec, location: str, first_day: str, last_day: str | None = None,
    *, model_version: str | None = None,
) -> None:
    """Atomically replace the days [first_day, last_day] of the table with `df`; with
    `model_version`, only that version's rows of those days (version-keyed tables).

    One Delta commit: readers see the old days or the new ones, never a mix, and a rerun
    replaces exactly what the previous run wrote. Rows of `df` outside the range are refused
    by Delta (replaceWhere constraint check).
    """
    last_day = validate_day(last_day or first_day)
    first_day = validate_day(first_day)
    ensure_table(df.sparkSession, spec, location)
    predicate = f"dt >= {_sql_string(first_day)} AND dt <= {_sql_string(last_day)}"
    if model_version is not None:
        predicate += f" AND model_version = {_sql_string(model_version)}"
    (
        conform(df, spec)
        .write.format("delta")
        .mode("overwrite")
        .option("replaceWhere", predicate)
        .save(location)
    )


def read_day(spark: SparkSession, location: str, day: str) -> DataFrame:
    """Read one `dt` partition (a pruned scan: only that day's files are listed)."""
    return spark.read.format("delta").load(location).where(F.col("dt") == validate_day(day))


def register_table(spark: SparkSession, spec: TableSpec, location: str) -> None:
    """Register `notellm2.<name>` as an external Delta table at `location` (where the job
    has just written it).

    An existing registration pointing elsewhere, or at a location whose data was deleted,
    is re-pointed; dropping an external table leaves its data alone.
    """
    location = _absolute_location(location)
    current = _registered_location(spark, spec)
    if current is not None and current.rstrip("/") == location.rstrip("/"):
        return
    if current is None:
        spark.sql(f"CREATE DATABASE IF NOT EXISTS {DATABASE}")
    else:
        spark.sql(f"DROP TABLE {spec.qualified_name}")
    spark.sql(
        f"CREATE TABLE {spec.qualified_name} USING DELTA LOCATION {_sql_string(location)}"
    )


def _registered_location(spark: SparkSession, spec: TableSpec) -> str | None:
    """Where the metastore says the table is; None if it is not registered.

    Asked of the session's external catalog, the metastore alone: `DESCRIBE DETAIL` would
    also read the Delta log (a Spark job, the larger share of a small day's registration)
    and fails when the data at the registered location was deleted.
    """
    catalog = spark._jsparkSession.sessionState().catalog().externalCatalog()
    if not catalog.databaseExists(DATABASE) or not catalog.tableExists(DATABASE, spec.name):
        return None
    return _absolute_location(catalog.getTable(DATABASE, spec.name).location().toString())


def _absolute_location(location: str) -> str:
    """Local paths become file: URIs, the form the catalog stores; other URIs pass through."""
    if "://" in location or location.startswith("file:"):
        return location.replace("file:///", "file:/")
    return "file:" + str(Path(location).resolve())

