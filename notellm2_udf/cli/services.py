"""`notellm2 metastore` and `notellm2 sql-server`: start, stop and report the background
servers of a one-machine installation.

    notellm2 metastore start|stop|status [--lakehouse DIR] [--jars-dir DIR] [--port 1527]
    notellm2 sql-server start|stop|status [--run-dir DIR] [--port 10000] [--master M]

`start` returns once the server answers (and at once when it already runs); `stop` shuts it
down; `status` exits 0 when it runs and 3 when it does not. Both bind to 127.0.0.1 only.
"""

from __future__ import annotations

import argparse
import getpass
import sys
from pathlib import Path

ACTIONS = ("start", "stop", "status")
NOT_RUNNING = 3


def add_metastore_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("action", choices=ACTIONS)
    parser.add_argument("--lakehouse", type=Path, default=Path(".cache/lakehouse"),
                        help="directory of the metastore database, its log and pid file "
                             "(default .cache/lakehouse, as make setup)")
    parser.add_argument("--jars-dir", type=Path, default=Path(".cache/derby"),
                        help="directory holding derbynet and derbyclient (default .cache/derby)")
    parser.add_argument("--port", type=int, default=1527)


def run_metastore(args: argparse.Namespace) -> int:
    from notellm2_udf.services.daemons import DaemonError
    from notellm2_udf.services.metastore import MetastoreServer

    server = MetastoreServer(args.lakehouse.resolve(), args.jars_dir.resolve(), args.port)
    try:
        if args.action == "start":
            pid = server.start()
            print(f"metastore: running, pid {pid}, {server.url}")
        elif args.action == "stop":
            print("metastore: stopped" if server.stop() else "metastore: was not running")
        else:
            pid = server.daemon.pid()
            if pid is None or not server.ping():
                print("metastore: not running")
                return NOT_RUNNING
            print(f"metastore: running, pid {pid}, {server.url}")
    except (DaemonError, FileNotFoundError) as err:
        print(f"notellm2 metastore: {err}", file=sys.stderr)
        return 2
    return 0


def add_sql_server_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("action", choices=ACTIONS)
    parser.add_argument("--run-dir", type=Path, default=Path(".cache/run"),
                        help="directory for the pid file and log (default .cache/run)")
    parser.add_argument("--port", type=int, default=10000)
    parser.add_argument("--master", default="local[2]",
                        help="where its queries run (default local[2])")
    parser.add_argument("--conf", action="append", default=[], metavar="KEY=VALUE",
                        help="a Spark setting for the server (repeatable)")


def run_sql_server(args: argparse.Namespace) -> int:
    from notellm2_udf.services.daemons import DaemonError
    from notellm2_udf.services.sql_server import SqlServer

    conf = dict(item.split("=", 1) for item in args.conf)
    server = SqlServer(args.run_dir.resolve(), args.port, args.master, conf)
    try:
        if args.action == "start":
            pid = server.start()
            print(f"sql-server: running, pid {pid}, {server.url} "
                  f"(e.g. beeline -u {server.url} -n {getpass.getuser()})")
        elif args.action == "stop":
            print("sql-server: stopped" if server.stop() else "sql-server: was not running")
        elif server.running():
            print(f"sql-server: running, pid {server.daemon.pid()}, {server.url}")
        else:
            print("sql-server: not running")
            return NOT_RUNNING
    except DaemonError as err:
        print(f"notellm2 sql-server: {err}", file=sys.stderr)
        return 2
    return 0
