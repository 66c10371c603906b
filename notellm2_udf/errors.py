"""Errors the library raises for unusable input; jobs turn them into exit code 2."""


class JobInputError(Exception):
    """The input is unusable (missing partition, wrong schema, unreadable model): the job
    stops with a one-line reason and writes nothing."""
