"""The frame of every spark-submit entry point: settings declared once as dataclasses,
their flags, the one `main`, logging, exit codes and the summary line."""
