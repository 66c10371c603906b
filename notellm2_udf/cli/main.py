"""`notellm2`: the project's console command.

    notellm2 sample-data --out DIR --start-date D --days N --notes-per-day M [--seed S]
    notellm2 init-model (--tiny-random | --llm DIR --vision DIR) --out DIR [--fusion F] [--seed S]
    notellm2 convert-authors-checkpoint --weights FILE --init-model DIR --out DIR
    notellm2 spark-defaults --jars-dir DIR --lakehouse DIR [--write]
    notellm2 sql "SELECT ..."
    notellm2 metastore start|stop|status
    notellm2 sql-server start|stop|status [--port 10000]
    notellm2 report --date D ... --out FILE
    notellm2 models status|rollback|withdraw|prune --models-root DIR ...

Heavy modules (Spark, torch) are imported by the subcommand that needs them.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

# name -> (help, module holding the command, its add-arguments function, its run function).
# Only the chosen command's module is imported, so `notellm2 sample-data` never loads torch.
_COMMANDS = {
    "sample-data": ("write synthetic notes and related pairs",
                    "notellm2_udf.cli.sample_data", "add_arguments", "run"),
    "init-model": ("compose an untrained NoteLLM-2 checkpoint",
                   "notellm2_udf.cli.init_model", "add_arguments", "run"),
    "convert-authors-checkpoint": ("convert weights trained with the authors' code to ours",
                                   "notellm2_udf.cli.convert_authors", "add_arguments", "run"),
    "spark-defaults": ("print (or --write) spark-defaults.conf for this venv",
                       "notellm2_udf.cli.spark_defaults", "add_arguments", "run"),
    "sql": ("run SQL against the notellm2 tables (the project's Spark configuration)",
            "notellm2_udf.cli.sql", "add_sql_arguments", "run_sql"),
    "metastore": ("start, stop or check the shared metastore server (Derby, loopback)",
                  "notellm2_udf.cli.services", "add_metastore_arguments", "run_metastore"),
    "sql-server": ("start, stop or check the Thrift JDBC/ODBC server (loopback)",
                   "notellm2_udf.cli.services", "add_sql_server_arguments", "run_sql_server"),
    "report": ("write the static HTML QA report of a day's related notes",
               "notellm2_udf.cli.report", "add_report_arguments", "run_report"),
    "models": ("the model registry: status, rollback, withdraw, prune",
               "notellm2_udf.cli.models", "add_arguments", "run"),
}


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = _build_parser(argv[0] if argv else None).parse_args(argv)
    return args.run(args)


def _build_parser(chosen: str | None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="notellm2", description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    for name, (help_text, module_name, add_arguments, run) in _COMMANDS.items():
        command = commands.add_parser(name, help=help_text)
        if name == chosen:
            module = importlib.import_module(module_name)
            getattr(module, add_arguments)(command)
            command.set_defaults(run=getattr(module, run))
    return parser


if __name__ == "__main__":
    sys.exit(main())
