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


def driver_cpus(spark) -> int:
    """CPUs the driver may use while the executors are idle (training on the sample).

    In local mode the driver shares the machine's cores with the idle executors; on a
    cluster it has `spark.driver.cores`.
    """
    master = spark.sparkContext.master
    if master.startswith("local"):
        return spark.sparkContext.defaultParallelism
    return int(spark.conf.get("spark.driver.cores", "1"))
