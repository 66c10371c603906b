"""One cache per Python worker for what executors load once and reuse: models, indexes.

In the spirit of pyspark.ml's ModelCache: with `spark.python.worker.reuse=true` (Spark's
default) a Python worker serves every task of its executor slot, so a model or index
loaded by the first task is found by the next ones. The cache is bounded (least recently
used entries are dropped: a worker that meets a new model version or a new day's index
does not keep the old one alive) and locked (a task's threads, or the prefetching thread
of the encoder, may ask at once; one of them loads, the others wait for it).
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Any

log = logging.getLogger("notellm2.worker_cache")

DEFAULT_CAPACITY = 1


class WorkerCache:
    """`get(key, load)`: the cached value of `key`, loaded with `load()` on a miss."""

    def __init__(self, capacity: int = DEFAULT_CAPACITY):
        if capacity < 1:
            raise ValueError(f"capacity must be >= 1, got {capacity}")
        self.capacity = capacity
        self.loads = 0
        self._entries: OrderedDict[Hashable, Any] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: Hashable, load: Callable[[], Any]) -> Any:
        with self._lock:
            if key in self._entries:
                self._entries.move_to_end(key)
                return self._entries[key]
            while len(self._entries) >= self.capacity:
                _, evicted = self._entries.popitem(last=False)
                _close(evicted)
            started = time.monotonic()
            value = load()
            self._entries[key] = value
            self.loads += 1
            log.info("loaded %s in pid %d in %.1fs", _describe(key), os.getpid(),
                     time.monotonic() - started)
            return value

    def clear(self) -> None:
        with self._lock:
            while self._entries:
                _close(self._entries.popitem()[1])

    def keys(self) -> list[Hashable]:
        """The cached keys, least recently used first."""
        with self._lock:
            return list(self._entries)

    def __len__(self) -> int:
        return len(self._entries)


def _close(value: Any) -> None:
    """Release what an evicted value holds beyond memory (the encoder's worker processes)."""
    close = getattr(value, "close", None)
    if callable(close):
        close()


def _describe(key: Hashable) -> str:
    return str(key)[:200]


# The per-worker caches: one for models, one for indexes, so a day's index does not evict
# the model of an executor that runs both kinds of task.
MODELS = WorkerCache()
INDEXES = WorkerCache()
