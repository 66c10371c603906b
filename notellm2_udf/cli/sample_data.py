"""`notellm2 sample-data`: write synthetic notes and related pairs as Delta tables."""

from __future__ import annotations

import argparse
import sys
from datetime import date
from pathlib import Path


def add_arguments(sample: argparse.ArgumentParser) -> None:
    sample.add_argument("--out", required=True, type=Path, help="directory for the tables")
    sample.add_argument("--start-date", required=True, type=date.fromisoformat,
                        help="first day, yyyy-MM-dd")
    sample.add_argument("--days", required=True, type=int)
    sample.add_argument("--notes-per-day", required=True, type=int)
    sample.add_argument("--seed", type=int, default=0)
    sample.add_argument("--no-register", dest="register", action="store_false",
                        help="do not register notellm2.notes / notellm2.related_pairs")


def run(args: argparse.Namespace) -> int:
    from notellm2_udf.sample.notes import SampleSpec
    from notellm2_udf.sample.tables import write_sample_tables
    from notellm2_udf.spark.session import SparkSettings, build_spark_session

    try:
        spec = SampleSpec(args.start_date, args.days, args.notes_per_day, args.seed)
    except ValueError as err:
        print(f"notellm2 sample-data: {err}", file=sys.stderr)
        return 2
    spark = build_spark_session(SparkSettings(app_name="notellm2-sample-data"))
    summary = write_sample_tables(spark, spec, args.out, register=args.register)
    print(summary)
    return 0
