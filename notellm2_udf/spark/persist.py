"""How a job keeps a DataFrame it reads several times (a window corpus, a day's encoded
rows or lists) without holding it in the JVM's heap."""

from __future__ import annotations

from pyspark import StorageLevel
from pyspark.sql import DataFrame


def persist_on_disk(df: DataFrame) -> DataFrame:
    """`df` kept on the executors' local disk for the several reads a job makes of it.

    Not MEMORY_AND_DISK (`.cache()`): a block that spilled is read back into one heap buffer
    the size of the whole partition, which killed build_index over 3M notes with the
    default 1 GiB driver (java.lang.OutOfMemoryError in BlockManager.
    maybeCacheDiskBytesInMemory, measured). A disk-only block is streamed batch by batch.
    """
    return df.persist(StorageLevel.DISK_ONLY)
