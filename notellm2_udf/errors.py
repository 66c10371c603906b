"""Errors the library raises for unusable input; jobs turn them into exit code 2."""


class JobInputError(Exception):
    """The input is unusable (missing partition, wrong schema, unreadable model): the job
    stops with a one-line reason and writes nothing."""


def describe_error(err: BaseException) -> str:
    """`Type: message` on one line, at most 200 characters: an error as a table cell."""
    message = " ".join(str(err).split())
    return f"{type(err).__name__}: {message}"[:200] if message else type(err).__name__
