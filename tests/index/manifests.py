"""Index manifests as earlier releases wrote them (format 1), byte for byte as json.dumps with
indent=1 left them."""

from __future__ import annotations

import json

# The first release (2026-11-26): no window accounting, no task index budget.
FIRST_RELEASE = """{
 "format": 1,
 "date": "2026-11-24",
 "window_days": 30,
 "window": [
  "2026-10-26",
  "2026-11-24"
 ],
 "model_version": "m1",
 "dimension": 32,
 "metric": "inner_product",
 "index_type": "ivf",
 "factory": "IVF76,Flat",
 "search_parameters": "nprobe=16",
 "params": {
  "index_type": "ivf",
  "d": 32,
  "nlist": 76,
  "pq_m": 0,
  "hnsw_m": 0,
  "search": "nprobe=16"
 },
 "rows": 3000,
 "shards": [
  {
   "shard": 0,
   "rows": 1496,
   "first_note_id": "n00000",
   "file": "shard-00000.faiss",
   "ids": "shard-00000.ids.parquet",
   "bytes": 216845,
   "build_s": 0.412,
   "offset": 0
  },
  {
   "shard": 1,
   "rows": 1504,
   "first_note_id": "n01496",
   "file": "shard-00001.faiss",
   "ids": "shard-00001.ids.parquet",
   "bytes": 217997,
   "build_s": 0.398,
   "offset": 1496
  }
 ],
 "trained": "trained.faiss",
 "created_utc": "2026-11-26T07:04:06+00:00",
 "build": "build-20261126T070400Z-1a2b3c"
}"""

# The registry release (2026-11-29): the window's accounts; an empty window's explicit
# empty index, which never recorded a task index budget.
EMPTY_INDEX = """{
 "format": 1,
 "date": "2026-11-24",
 "window_days": 3,
 "window": [
  "2026-11-22",
  "2026-11-24"
 ],
 "model_version": "m2",
 "dimension": null,
 "metric": "inner_product",
 "index_type": "empty",
 "factory": "empty",
 "search_parameters": null,
 "params": null,
 "rows": 0,
 "shards": [],
 "trained": null,
 "completeness": {
  "days_with_notes": 3,
  "missing_days": [],
  "late_notes": {}
 },
 "created_utc": "2026-11-29T02:00:00+00:00",
 "build": "build-20261129T020000Z-9f8e7d"
}"""

# The task index budget release (2026-11-30) and after: every field this release writes.
WITH_BUDGET = """{
 "format": 1,
 "date": "2026-11-24",
 "window_days": 3,
 "window": [
  "2026-11-22",
  "2026-11-24"
 ],
 "model_version": "m1",
 "dimension": 32,
 "metric": "inner_product",
 "index_type": "flat",
 "factory": "Flat",
 "search_parameters": "",
 "params": {
  "index_type": "flat",
  "d": 32,
  "nlist": 0,
  "pq_m": 0,
  "hnsw_m": 0,
  "search": ""
 },
 "rows": 20,
 "shards": [
  {
   "shard": 0,
   "rows": 20,
   "first_note_id": "2026-11-22-00000",
   "file": "shard-00000.faiss",
   "ids": "shard-00000.ids.parquet",
   "bytes": 2605,
   "build_s": 0.05,
   "offset": 0
  }
 ],
 "task_index_bytes": 1073741824,
 "trained": null,
 "completeness": {
  "days_with_notes": 3,
  "missing_days": [
   "2026-11-23"
  ],
  "late_notes": {
   "2026-11-22": 1
  }
 },
 "created_utc": "2026-12-01T09:00:00+00:00",
 "build": "build-20261201T090000Z-4d5e6f"
}"""


def naming(build: str, text: str = WITH_BUDGET) -> str:
    """The manifest `text` with its build renamed `build`."""
    return json.dumps({**json.loads(text), "build": build}, indent=1)
