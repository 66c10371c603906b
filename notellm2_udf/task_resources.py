"""What Spark reserved for the running task, read from inside executor-side functions."""

from __future__ import annotations


def task_cpus() -> int:
    """CPUs reserved for the running Spark task (spark.task.cpus); 1 outside a task."""
    from pyspark import TaskContext

    context = TaskContext.get()
    return max(1, context.cpus()) if context is not None else 1
