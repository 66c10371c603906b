"""What Spark reserved for the running task, read from inside executor-side functions."""

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
