"""FAISS threads = the CPUs Spark gave the task, so concurrent tasks don't oversubscribe.

FAISS uses OpenMP with one thread per core by default; an executor running `c` tasks at
once would then run c x cores threads. Spark reserves `spark.task.cpus` per task.
"""

from __future__ import annotations

from notellm2_udf.task_resources import task_cpus


def use_task_cpus() -> int:
    """Set FAISS's OpenMP threads to the task's CPUs (call inside executor functions)."""
    import faiss

    cpus = task_cpus()
    faiss.omp_set_num_threads(cpus)
    return cpus


def driver_cpus(spark) -> int:
    """CPUs the driver may use while the executors are idle (training on the sample).

    In local mode the driver shares the machine's cores with the idle executors; on a
    cluster it has `spark.driver.cores`.
    """
    master = spark.sparkContext.master
    if master.startswith("local"):
        return spark.sparkContext.defaultParallelism
    return int(spark.conf.get("spark.driver.cores", "1"))
