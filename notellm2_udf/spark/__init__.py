"""The Spark side: the session, Delta I/O, days, contract tables, job flags and runtime,
executor resources and logging, the per-worker cache and the embedding UDF."""
