"""benchmarks/evaluate_scale.py, smaller: the protocol on 20k synthetic held-out notes
completes in a Spark whose driver (local mode: also the executor) has a 1 GiB heap."""

import json
import subprocess
import sys

import pytest

from tests.support.processes import REPO_ROOT


@pytest.mark.slow
def test_evaluation_of_20k_notes_with_a_1_gib_driver(tmp_path):
    out = tmp_path / "scale.json"
    subprocess.run([sys.executable, str(REPO_ROOT / "benchmarks" / "evaluate_scale.py"),
                    "--notes", "20000", "--dim", "16", "--driver-memory", "1g",
                    "--local-pairs", "5000", "--json", str(out)], check=True, timeout=3600)
    result = json.loads(out.read_text())
    assert result["max_heap_mb"] <= 1024
    # Each of the 20k notes once: at most 10k pairs; a greedy matching keeps at least half
    # of the 10k true pairs' worth.
    assert 5_000 <= result["counts"]["all"] <= 10_000
    assert set(result["subsets"]) == {"short_query", "long_query", "short_target",
                                      "long_target"}
    recall = result["recall"]
    assert 0 < recall["recall@10"] <= recall["recall@100"] <= recall["recall@1000"] <= 1
