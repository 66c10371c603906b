"""Is a day of a Delta table complete, does it hold rows? Read from the Delta log alone,
without Spark.

The scheduler's venv has pyarrow but no Spark jars, and a sensor that starts a JVM on every
poke would cost more than the wait. The log is enough: the live files of a table are the
`add` actions of its last checkpoint and of the JSON commits after it, less their `remove`s;
each `add` carries its partition values and (Spark writes them by default) a row count.

Completeness: producers append a day in many commits, so rows alone do not say a day is
complete. The contract: when a day is closed (no more appends), the producer sets the table
property `notellm2.closed_through` to it (`ALTER TABLE notes SET TBLPROPERTIES
('notellm2.closed_through' = '2026-11-25')`; days close in order, so every day up to it is
complete). `closed_through` reads the newest value from the log's metaData actions. A day
closed with no rows is an empty day, an explicit outcome. `partition_rows` serves producers
that write a day in one commit (`completeness = rows`). Classic checkpoints (single or
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


CLOSED_THROUGH = "notellm2.closed_through"  # as in notellm2_udf.inputs.notes


def closed_through(table_uri: str) -> str | None:
    """The newest day the producer closed (table property), None if it never closed one or
    there is no Delta table at `table_uri`."""
    configuration = None
    for action in _log_actions(table_uri) or ():
        if action.get("metaData"):
            configuration = action["metaData"].get("configuration") or {}
    if isinstance(configuration, list):  # a parquet map arrives as (key, value) pairs
        configuration = dict(configuration)
    return (configuration or {}).get(CLOSED_THROUGH)


def live_files(table_uri: str) -> list[LiveFile] | None:
    actions = _log_actions(table_uri)
    if actions is None:
        return None
    live: dict[str, LiveFile] = {}
    _apply(live, actions)
    return list(live.values())


def _log_actions(table_uri: str) -> Iterable[dict] | None:
    """The actions of the last checkpoint, then of each later commit, in order; None when
    there is no Delta log."""
    import pyarrow.fs as pafs

    fs, root = _filesystem(table_uri)
    log_dir = root.rstrip("/") + "/_delta_log"
    if fs.get_file_info(log_dir).type != pafs.FileType.Directory:
        return None
    return _read_log(fs, log_dir)


def _read_log(fs, log_dir: str) -> Iterable[dict]:
    import pyarrow.fs as pafs

    names = [info.base_name for info in fs.get_file_info(pafs.FileSelector(log_dir))]
    checkpoints = sorted({int(m.group(1)) for m in map(_CHECKPOINT.fullmatch, names) if m})
    start = -1
    if checkpoints:
        start = checkpoints[-1]
        parts = sorted(n for n in names if _CHECKPOINT.fullmatch(n)
                       and int(n[:20]) == start)
        for part in parts:
            yield from _checkpoint_actions(fs, f"{log_dir}/{part}")
    commits = sorted((int(m.group(1)), m.group(0))
                     for m in map(_COMMIT.fullmatch, names) if m and int(m.group(1)) > start)
    for _, name in commits:
        with fs.open_input_stream(f"{log_dir}/{name}") as stream:
            lines = stream.read().decode("utf-8").splitlines()
        yield from (json.loads(line) for line in lines if line.strip())


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
        table = pq.read_table(handle, columns=["add", "remove", "metaData"])
    for row in table.to_pylist():
        for kind in ("metaData", "add", "remove"):
            if row.get(kind):
                yield {kind: row[kind]}


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
