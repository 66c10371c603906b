"""`notellm2 spark-defaults`: the spark-defaults.conf that gives every Spark process of
this venv the Delta jars, one warehouse and one metastore."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def add_arguments(defaults: argparse.ArgumentParser) -> None:
    defaults.add_argument("--jars-dir", required=True, type=Path,
                          help="directory holding the Delta Lake jars")
    defaults.add_argument("--lakehouse", required=True, type=Path,
                          help="directory for the warehouse and the metastore's database")
    defaults.add_argument("--metastore-jars", type=Path,
                          help="directory holding derbynet and derbyclient: use the shared "
                               "metastore server (`notellm2 metastore start`) instead of "
                               "embedded Derby")
    defaults.add_argument("--metastore-port", type=int, default=None,
                          help="port of the metastore server (default 1527)")
    defaults.add_argument("--quick-jit", action="store_true",
                          help="stop the driver JVM's JIT at C1: seconds less per spark-submit "
                               "of a small day, JVM-bound work of big days slower "
                               "(docs/BENCHMARKS.md)")
    defaults.add_argument("--write", action="store_true",
                          help="write it where spark-submit reads it instead of printing")


def run(args: argparse.Namespace) -> int:
    from notellm2_udf.services.metastore import DEFAULT_PORT, client_jar, jdbc_url
    from notellm2_udf.spark.session import (
        LOCAL_LOG4J2_PROPERTIES,
        MetastoreEndpoint,
        format_spark_defaults,
        local_spark_defaults,
        spark_conf_dir,
    )

    jars = sorted(args.jars_dir.glob("*.jar"))
    if not jars:
        print(f"notellm2 spark-defaults: no jars in {args.jars_dir}", file=sys.stderr)
        return 2
    metastore = None
    if args.metastore_jars is not None:
        try:
            metastore = MetastoreEndpoint(jdbc_url(args.metastore_port or DEFAULT_PORT),
                                          client_jar(args.metastore_jars))
        except FileNotFoundError as err:
            print(f"notellm2 spark-defaults: {err}", file=sys.stderr)
            return 2
    text = format_spark_defaults(
        local_spark_defaults(jars, args.lakehouse, sys.executable, metastore,
                             quick_jit=args.quick_jit))
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
