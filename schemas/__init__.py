"""The Delta table contracts, defined once: schemas, partitioning and DDL.

Users' SQL, DAGs and scripts depend on these table and column names: add columns freely,
rename none without a migration note in the README.
"""

from schemas.tables import (
    CLOSED_THROUGH,
    DATABASE,
    EMBEDDING_ERRORS,
    NOTE_EMBEDDINGS,
    NOTES,
    RELATED_NOTES,
    RELATED_PAIRS,
    TABLES,
    TableSpec,
)

__all__ = [
    "CLOSED_THROUGH",
    "DATABASE",
    "EMBEDDING_ERRORS",
    "NOTE_EMBEDDINGS",
    "NOTES",
    "RELATED_NOTES",
    "RELATED_PAIRS",
    "TABLES",
    "TableSpec",
]
