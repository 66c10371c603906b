"""`notellm2`: the project's console command.

    notellm2 sample-data --out DIR --start-date D --days N --notes-per-day M [--seed S]
    notellm2 init-model (--tiny-random | --llm DIR --vision DIR) --out DIR [--fusion F] [--seed S]
    notellm2 spark-defaults --jars-dir DIR --lakehouse DIR [--write]
    notellm2 sql "SELECT ..."
    notellm2 report --date D ... --out FILE

Heavy modules (Spark, torch) are imported by the subcommand that needs them.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence
from datetime import date
from pathlib import Path

# name -> (help, module holding the command, its add-arguments function, its run function).
# Only the chosen command's module is imported, so `notellm2 sample-data` never loads torch.
_COMMANDS = {
    "sample-data": ("write synthetic notes and related pairs",
                    "notellm2_udf.cli", "add_sample_data_arguments", "_run_sample_data"),
    "init-model": ("compose an untrained NoteLLM-2 checkpoint",
                   "notellm2_udf.init_model", "add_init_model_arguments", "run_init_model"),
    "spark-defaults": ("print (or --write) spark-defaults.conf for this venv",
                       "notellm2_udf.cli", "add_spark_defaults_arguments", "_run_spark_defaults"),
    "sql": ("run SQL against the notellm2 tables (the project's Spark configuration)",
            "notellm2_udf.sql_cli", "add_sql_arguments", "run_sql"),
    "report": ("write the static HTML QA report of a day's related notes",
               "notellm2_udf.report", "add_report_arguments", "run_report"),
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


def add_sample_data_arguments(sample: argparse.ArgumentParser) -> None:
    sample.add_argument("--out", required=True, type=Path, help="directory for the tables")
    sample.add_argument("--start-date", required=True, type=date.fromisoformat,
                        help="first day, yyyy-MM-dd")
    sample.add_argument("--days", required=True, type=int)
    sample.add_argument("--notes-per-day", required=True, type=int)
    sample.add_argument("--seed", type=int, default=0)
    sample.add_argument("--no-register", dest="register", action="store_false",
                        help="do not register notellm2.notes / notellm2.related_pairs")


def add_spark_defaults_arguments(defaults: argparse.ArgumentParser) -> None:
    defaults.add_argument("--jars-dir", required=True, type=Path,
                          help="directory holding the Delta Lake jars")
    defaults.add_argument("--lakehouse", required=True, type=Path,
                          help="directory for the warehouse and the embedded metastore")
    defaults.add_argument("--write", action="store_true",
                          help="write it where spark-submit reads it instead of printing")


def _run_sample_data(args: argparse.Namespace) -> int:
    from notellm2_udf.sample_data import SampleSpec
    from notellm2_udf.sample_tables import write_sample_tables
    from notellm2_udf.spark_session import SparkSettings, build_spark_session

    try:
        spec = SampleSpec(args.start_date, args.days, args.notes_per_day, args.seed)
    except ValueError as err:
        print(f"notellm2 sample-data: {err}", file=sys.stderr)
        return 2
    spark = build_spark_session(SparkSettings(app_name="notellm2-sample-data"))
    summary = write_sample_tables(spark, spec, args.out, register=args.register)
    print(summary)
    return 0


def _run_spark_defaults(args: argparse.Namespace) -> int:
    from notellm2_udf.spark_session import (
        LOCAL_LOG4J2_PROPERTIES,
        format_spark_defaults,
        local_spark_defaults,
        spark_conf_dir,
    )

    jars = sorted(args.jars_dir.glob("*.jar"))
    if not jars:
        print(f"notellm2 spark-defaults: no jars in {args.jars_dir}", file=sys.stderr)
        return 2
    text = format_spark_defaults(local_spark_defaults(jars, args.lakehouse, sys.executable))
    if not args.write:
        print(text, end="")
        return 0
    args.lakehouse.mkdir(parents=True, exist_ok=True)
    target = spark_conf_dir() / "spark-defaults.conf"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text)
    (target.parent / "log4j2.properties").write_text(LOCAL_LOG4J2_PROPERTIES)
    print(f"wrote {target} and log4j2.properties beside it")
    return 0


if __name__ == "__main__":
    sys.exit(main())
