"""Logging of jobs and executor-side functions, free of Spark and Delta imports.

The embedding UDF configures logging inside Python workers; keeping this apart from
job_runtime lets executor code (and the GPU checks, which run without Spark) import it.
"""

import logging
import sys

PROJECT_LOGGER = "notellm2"


def configure_logging() -> None:
    """Our progress at INFO; other libraries' (py4j, transformers) at WARNING."""
    if not logging.getLogger().handlers:
        logging.basicConfig(
            level=logging.WARNING, stream=sys.stderr,
            format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger(PROJECT_LOGGER).setLevel(logging.INFO)
