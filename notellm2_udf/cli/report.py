"""`notellm2 report`: a static HTML page to eyeball one day of related notes.

    notellm2 report --date 2026-11-25 --out report.html [--samples 8] [--top 5] [--seed 0]
                    [--thumb-px 96] [--database notellm2]

Reads the registered tables (`<database>.notes`, `note_embeddings`, `embedding_errors`,
`related_notes`) through the project's Spark session and writes one self-contained file:
sampled query notes (image, title) beside their top related notes (image, title, score), the
per-day counts, the error summary and the day's score histogram. Images are inline `data:`
URIs of downscaled JPEG thumbnails; there is no script and no remote resource (a Content
Security Policy forbids both). Note text is untrusted: every piece of it is `html.escape`d,
so a title holding markup shows as text.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def add_report_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--date", required=True, help="the day to show, yyyy-MM-dd")
    parser.add_argument("--out", required=True, type=Path, help="HTML file to write")
    parser.add_argument("--samples", type=int, default=8, help="query notes shown (default 8)")
    parser.add_argument("--top", type=int, default=5, help="related notes per query (default 5)")
    parser.add_argument("--seed", type=int, default=0, help="which query notes are sampled")
    parser.add_argument("--thumb-px", type=int, default=96, help="thumbnail side in pixels")
    parser.add_argument("--database", default="notellm2", help="database of the tables")


def run_report(args: argparse.Namespace) -> int:
    from notellm2_udf.days import validate_day
    from notellm2_udf.report.collect import collect_report_data
    from notellm2_udf.report.html import render_report
    from notellm2_udf.spark.session import SparkSettings, build_spark_session

    try:
        validate_day(args.date)
    except ValueError as err:
        print(f"notellm2 report: {err}", file=sys.stderr)
        return 2
    spark = build_spark_session(SparkSettings(app_name="notellm2-report"))
    spark.sparkContext.setLogLevel("ERROR")
    try:
        data = collect_report_data(spark, args.database, args.date, samples=args.samples,
                                   top=args.top, seed=args.seed, thumb_px=args.thumb_px)
    except LookupError as err:
        print(f"notellm2 report: {err}", file=sys.stderr)
        return 2
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(render_report(data), encoding="utf-8")
    print(f"wrote {args.out} ({len(data.panels)} query notes, dt={args.date})")
    return 0
