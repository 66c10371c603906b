"""What Spark reserved for the running task (CPUs, GPU), read inside executor functions.

Libraries with their own thread pools (torch, FAISS's OpenMP) default to one thread per
core; an executor running `c` tasks at once would then run c x cores threads. Spark
reserves `spark.task.cpus` per task, and that is what each task uses.
"""

from __future__ import annotations


def task_cpus() -> int:
    """CPUs reserved for the running Spark task (spark.task.cpus); 1 outside a task."""
    from pyspark import TaskContext

    context = TaskContext.get()
    return max(1, context.cpus()) if context is not None else 1


def task_device() -> str:
    """"cuda:<address>" for the GPU Spark assigned to this task, else "cpu"."""
    from pyspark import TaskContext

    context = TaskContext.get()
    gpus = context.resources().get("gpu") if context is not None else None
    if gpus is not None and gpus.addresses:
        return f"cuda:{gpus.addresses[0]}"
    return "cpu"


def use_task_cpus_for_faiss() -> int:
    """Set FAISS's OpenMP threads to the task's CPUs (call inside executor functions)."""
    import faiss

    cpus = task_cpus()
    faiss.omp_set_num_threads(cpus)
    return cpus


def executor_cpus(spark) -> int:
    """CPUs of one executor, for a task that runs alone in its stage (training on a sample).

    In local mode the one executor has the machine's cores (`local[n]`); on a cluster
    `spark.executor.cores` (standalone's default, all of a worker's cores, is not known
    here: set it).
    """
    if spark.sparkContext.master.startswith("local"):
        return spark.sparkContext.defaultParallelism
    return int(spark.conf.get("spark.executor.cores", "1"))
