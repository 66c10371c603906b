"""The `notellm2` console command and its subcommands, one module each."""

from notellm2_udf.cli.main import main

__all__ = ["main"]
