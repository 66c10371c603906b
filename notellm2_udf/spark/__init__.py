"""Spark plumbing, and only that: the session, Delta I/O, reading contract tables, keeping a
DataFrame on disk, the running task's resources. Every module here imports pyspark."""
