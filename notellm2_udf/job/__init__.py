"""The frame of every spark-submit entry point: the one `main` (flags -> settings -> run),
logging, exit codes and the summary line."""
