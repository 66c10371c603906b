"""The one per-worker cache of models and indexes: bounded, locked, closes what it drops."""

from __future__ import annotations

import threading
import time

import pytest

from notellm2_udf.files.worker_cache import WorkerCache


class Loaded:
    def __init__(self, name: str):
        self.name, self.closed = name, False

    def close(self) -> None:
        self.closed = True


def test_a_key_is_loaded_once_and_then_served_from_the_cache():
    cache, calls = WorkerCache(capacity=2), []

    def load():
        calls.append("a")
        return Loaded("a")

    first = cache.get("a", load)
    assert cache.get("a", load) is first
    assert calls == ["a"] and cache.loads == 1


def test_the_least_recently_used_entry_is_dropped_and_closed():
    cache = WorkerCache(capacity=2)
    a, b = cache.get("a", lambda: Loaded("a")), cache.get("b", lambda: Loaded("b"))
    cache.get("a", lambda: Loaded("a again"))  # a is now the most recently used
    c = cache.get("c", lambda: Loaded("c"))
    assert cache.keys() == ["a", "c"]
    assert b.closed and not a.closed and not c.closed
    assert cache.loads == 3


def test_threads_asking_at_once_share_one_load():
    cache, loads = WorkerCache(), []

    def slow_load():
        loads.append(threading.get_ident())
        time.sleep(0.2)
        return Loaded("model")

    results = []
    threads = [threading.Thread(target=lambda: results.append(cache.get("m", slow_load)))
               for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(loads) == 1
    assert len(results) == 4 and all(result is results[0] for result in results)


def test_capacity_must_be_positive():
    with pytest.raises(ValueError, match="capacity must be >= 1"):
        WorkerCache(capacity=0)
