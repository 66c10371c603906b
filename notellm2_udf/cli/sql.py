"""`notellm2 sql`: run SQL against the notellm2 tables with the project's Spark configuration.

    notellm2 sql [--param NAME=VALUE ...] [--format tsv|json] "STATEMENT" ["STATEMENT" ...]
    notellm2 sql [--param NAME=VALUE ...] -f FILE.sql      (or FILE.md: its ```sql blocks)

The session comes from `build_spark_session`, so it has what `spark-submit` and `spark-sql`
have: Delta, the Hive catalog (locally the embedded metastore of spark-defaults.conf; one
Spark process at a time), `--conf`-style settings from spark-defaults.conf. Statements run in
order; each one's rows are printed with a header line, results separated by a blank line.
`:name` markers in a statement take `--param name=value` values as SQL string literals
(Spark's parameterized queries: no quoting, no injection). Exit 2 with a one-line reason on
a SQL error.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

_STATEMENT_END = re.compile(r";[ \t]*(?:\n|$)")
_SQL_BLOCK = re.compile(r"^```sql\n(.*?)^```", re.MULTILINE | re.DOTALL)
_MARKER = re.compile(r"(?<![:\w]):([A-Za-z_]\w*)")


def add_sql_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("statements", nargs="*", metavar="STATEMENT", help="SQL to run")
    parser.add_argument("-f", "--file", type=Path,
                        help="file of statements, each ending with ';' at the end of a line; "
                             "of a .md file, the ```sql blocks (docs/SQL.md)")
    parser.add_argument("--param", action="append", default=[], metavar="NAME=VALUE",
                        type=_param, help="value of the :NAME marker (a string)")
    parser.add_argument("--format", choices=("tsv", "json"), default="tsv",
                        help="tab-separated with a header (default) or JSON lines")
    parser.add_argument("--max-rows", type=int, default=10_000,
                        help="rows printed per statement at most (default 10000)")


def _param(text: str) -> tuple[str, str]:
    name, sep, value = text.partition("=")
    if not sep or not re.fullmatch(r"[A-Za-z_]\w*", name):
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE, got {text!r}")
    return name, value


def statements_of_file(path: Path) -> list[str]:
    text = path.read_text()
    if path.suffix == ".md":
        text = "\n".join(_SQL_BLOCK.findall(text))
    return split_statements(text)


def split_statements(text: str) -> list[str]:
    """Statements of a file: separated by ';' at the end of a line; comments-only pieces
    dropped."""
    pieces = (piece.strip() for piece in _STATEMENT_END.split(text))
    return [piece for piece in pieces if _strip_comments(piece)]


def _strip_comments(statement: str) -> str:
    return "\n".join(line for line in statement.splitlines()
                     if not line.strip().startswith("--")).strip()


def markers(statement: str) -> set[str]:
    """The :name parameter markers of a statement (outside quoted strings)."""
    unquoted = re.sub(r"'(?:[^'\\]|\\.)*'", "''", statement)
    uncommented = re.sub(r"--[^\n]*", "", unquoted)
    return set(_MARKER.findall(uncommented))


def run_sql(args: argparse.Namespace) -> int:
    statements = list(args.statements)
    if args.file:
        statements += statements_of_file(args.file)
    if not statements:
        print("notellm2 sql: give a statement or -f FILE", file=sys.stderr)
        return 2
    params = dict(args.param)
    missing = sorted(set().union(*(markers(s) for s in statements)) - params.keys())
    if missing:
        print(f"notellm2 sql: no --param for {missing}", file=sys.stderr)
        return 2

    from notellm2_udf.spark.session import SparkSettings, build_spark_session

    spark = build_spark_session(SparkSettings(app_name="notellm2-sql"))
    spark.sparkContext.setLogLevel("ERROR")
    for number, statement in enumerate(statements):
        try:
            columns, rows = run_statement(spark, statement, params, args.max_rows)
        except Exception as err:  # AnalysisException, ParseException: one line for the user
            print(f"notellm2 sql: statement {number + 1}: {_first_line(err)}", file=sys.stderr)
            return 2
        if number:
            print()
        for line in format_rows(columns, rows, args.format):
            print(line)
    return 0


def run_statement(spark, statement: str, params: dict[str, str],
                  max_rows: int) -> tuple[list[str], list[tuple]]:
    """(column names, up to max_rows rows) of one statement; markers bound from params."""
    used = {name: params[name] for name in markers(statement)}
    result_df = spark.sql(statement, args=used or None)
    return result_df.columns, [tuple(row) for row in result_df.limit(max_rows).collect()]


def format_rows(columns: list[str], rows: Iterable[tuple], fmt: str) -> Iterable[str]:
    if fmt == "json":
        for row in rows:
            yield json.dumps(dict(zip(columns, map(_plain, row))), default=str)
        return
    yield "\t".join(columns)
    for row in rows:
        yield "\t".join(_cell(value) for value in row)


def _plain(value: Any) -> Any:
    if hasattr(value, "asDict"):
        return {key: _plain(item) for key, item in value.asDict().items()}
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    if isinstance(value, (bytes, bytearray)):
        return f"<{len(value)} bytes>"
    return value


def _cell(value: Any) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, (list, tuple, dict, bytes, bytearray)) or hasattr(value, "asDict"):
        return json.dumps(_plain(value), default=str)
    return str(value).replace("\t", " ").replace("\n", " ")


def _first_line(err: Exception) -> str:
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__
