"""Related notes with the Python worker's memory capped below the size of the index."""

from __future__ import annotations

import pytest

from tests.support.processes import SCRIPTS, run_process, script_result

# Address space a worker may add to what it needs for the search machinery alone: the
# 410 MB index (16 shards of 26 MB) does not fit, one shard group of 32 MiB with its
# queries, candidates and output batches does.
HEADROOM_MIB = 200


@pytest.mark.slow
def test_related_notes_complete_under_a_worker_limit_smaller_than_the_index(
        private_install, tmp_path, spark_submit):
    """A 1024-d corpus of 100k notes (410 MB flat index, 16 shards): with the worker capped
    at its measured baseline + 200 MiB, a task budget of 32 MiB gives the brute-force lists;
    the whole index per task fails under the same cap (proof that the cap binds), and the
    failed run leaves the published rows as they were."""
    env, _ = private_install
    calibration = script_result(run_process(
        [str(spark_submit), "--master", "local[1]",
         str(SCRIPTS / "related_under_memory_limit.py"), "calibrate", str(tmp_path)], env))
    limit_mib = calibration["worker_peak_mib"] + HEADROOM_MIB
    report = script_result(run_process(
        [str(spark_submit), "--master", "local[1]", "--driver-memory", "2g",
         "--conf", f"spark.executor.pyspark.memory={limit_mib}m",
         str(SCRIPTS / "related_under_memory_limit.py"), "run", str(tmp_path)], env,
        timeout=900))
    assert (report["build"], report["grouped"]) == (0, 0), report
    assert report["lists"] == 40 and report["lists_equal_brute_force"], report
    assert report["whole"] != 0, report
    assert report["lists_after_failed_run_unchanged"], report
    assert report["index_mib"] > HEADROOM_MIB + 150 and report["shards"] == 16, report
