"""The exact top-k merge of the index search: one int64 key per candidate (what merge_topk
does for global ids below 2^32 - 1) against the two-key lexsort it replaced (what it keeps
for larger ids), on the shapes the related-notes search merges.

    python benchmarks/merge_topk.py [--queries 100000] [--k 100] [--repeats 5]

Shapes: [queries, 2k] (a group's top-k merged into a block's running top-k), [queries,
8 x (k + 2)] (8 shards' results at once). Random scores and ids; both sides of each shape
timed alternately in one process, medians printed with their ratio and as JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time

import numpy as np

from notellm2_udf.index.search import MISSING, _merge_by_key, _merge_by_lexsort, merge_topk


def timed(merge, D: np.ndarray, G: np.ndarray, k: int) -> float:
    started = time.perf_counter()
    merge(D, G, k)
    return time.perf_counter() - started


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--queries", type=int, default=100_000)
    parser.add_argument("--k", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)
    rng = np.random.default_rng(0)
    result = {"date": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "machine": platform.machine(),
              "cores": os.cpu_count(), "numpy": np.__version__, "load_before": os.getloadavg(),
              "shapes": []}
    for columns in (2 * args.k, 8 * (args.k + 2)):
        D = rng.random((args.queries, columns), dtype=np.float32)
        G = rng.integers(0, 10 * args.queries, (args.queries, columns))
        key_D, key_G = _merge_by_key(D, G, args.k)
        lex_D, lex_G = _merge_by_lexsort(D, G, args.k)
        assert np.array_equal(key_G, lex_G) and np.array_equal(key_D, lex_D)
        assert np.array_equal(merge_topk(D, G, args.k)[1], key_G)
        times = {"int64 key": [], "lexsort": []}
        for _ in range(args.repeats):
            times["int64 key"].append(timed(_merge_by_key, D, G, args.k))
            times["lexsort"].append(timed(_merge_by_lexsort, D, np.where(G < 0, MISSING, G),
                                          args.k))
        medians = {name: round(statistics.median(values), 3) for name, values in times.items()}
        shape = {"shape": [args.queries, columns], "median_s": medians,
                 "lexsort / key": round(medians["lexsort"] / medians["int64 key"], 2)}
        result["shapes"].append(shape)
        print(f"[{args.queries}, {columns}]: int64 key {medians['int64 key']} s, "
              f"lexsort {medians['lexsort']} s: {shape['lexsort / key']}x", flush=True)
    result["load_after"] = os.getloadavg()
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
