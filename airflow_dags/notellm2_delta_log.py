"""Does a Delta table hold rows for a day? Read from the Delta log alone, without Spark.

The scheduler's venv has pyarrow but no Spark jars, and a sensor that starts a JVM on every
poke would cost more than the wait. The log is enough: the live files of a table are the
`add` actions of its last checkpoint and of the JSON commits after it, less their `remove`s;
each `add` carries its partition values and (Spark writes them by default) a row count.

Relies on: the table is partitioned by `dt` and a day is written by one commit (the jobs'
`replaceWhere`), so a day that is visible is complete. Classic checkpoints (single or
multi-part parquet) are read; a v2 (UUID-named) checkpoint is not, so with one of those the
commits before it must still be in the log. pyarrow's filesystems cover local paths, file:,
s3:// and gs:// (s3a:// is read as s3://) and hdfs:// (with libhdfs).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass

_COMMIT = re.compile(r"(\d{20})\.json")
_CHECKPOINT = re.compile(r"(\d{20})\.checkpoint(?:\.\d{10}\.\d{10})?\.parquet")


@dataclass(frozen=True)
class LiveFile:
    dt: str | None
    rows: int | None  # None: the add action had no stats
    size: int


def partition_rows(table_uri: str, day: str) -> int | None:
    """Rows of partition dt=`day` per the log (a file without stats counts as 1 row if it has
    bytes); None when there is no Delta table at `table_uri`."""
    files = live_files(table_uri)
    if files is None:
        return None
    return sum(
        (f.rows if f.rows is not None else int(f.size > 0)) for f in files if f.dt == day)


def live_files(table_uri: str) -> list[LiveFile] | None:
    import pyarrow.fs as pafs

    fs, root = _filesystem(table_uri)
    log_dir = root.rstrip("/") + "/_delta_log"
    if fs.get_file_info(log_dir).type != pafs.FileType.Directory:
        return None
    names = [info.base_name for info in fs.get_file_info(pafs.FileSelector(log_dir))]
    checkpoints = sorted({int(m.group(1)) for m in map(_CHECKPOINT.fullmatch, names) if m})
    live: dict[str, LiveFile] = {}
    start = -1
    if checkpoints:
        start = checkpoints[-1]
        parts = sorted(n for n in names if _CHECKPOINT.fullmatch(n)
                       and int(n[:20]) == start)
        for part in parts:
            _apply(live, _checkpoint_actions(fs, f"{log_dir}/{part}"))
    commits = sorted((int(m.group(1)), m.group(0))
                     for m in map(_COMMIT.fullmatch, names) if m and int(m.group(1)) > start)
    for _, name in commits:
        with fs.open_input_stream(f"{log_dir}/{name}") as stream:
            lines = stream.read().decode("utf-8").splitlines()
        _apply(live, (json.loads(line) for line in lines if line.strip()))
    return list(live.values())


def _apply(live: dict[str, LiveFile], actions: Iterable[dict]) -> None:
    for action in actions:
        if action.get("add"):
            add = action["add"]
            live[add["path"]] = LiveFile(_dt(add.get("partitionValues")),
                                         _num_records(add.get("stats")), add.get("size") or 0)
        elif action.get("remove"):
            live.pop(action["remove"]["path"], None)


def _checkpoint_actions(fs, path: str) -> Iterable[dict]:
    import pyarrow.parquet as pq

    with fs.open_input_file(path) as handle:
        table = pq.read_table(handle, columns=["add", "remove"])
    for row in table.to_pylist():
        if row.get("add"):
            yield {"add": row["add"]}
        elif row.get("remove"):
            yield {"remove": row["remove"]}


def _dt(partition_values) -> str | None:
    if isinstance(partition_values, list):  # a parquet map arrives as (key, value) pairs
        partition_values = dict(partition_values)
    return (partition_values or {}).get("dt")


def _num_records(stats: str | None) -> int | None:
    if not stats:
        return None
    return json.loads(stats).get("numRecords")


def _filesystem(table_uri: str):
    import pyarrow.fs as pafs

    if "://" not in table_uri:
        return pafs.LocalFileSystem(), table_uri.removeprefix("file:")
    if table_uri.startswith("s3a://"):
        table_uri = "s3://" + table_uri[len("s3a://"):]
    return pafs.FileSystem.from_uri(table_uri)
