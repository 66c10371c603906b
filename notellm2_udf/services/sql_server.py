"""The SQL endpoint: Spark's Thrift JDBC/ODBC server (HiveThriftServer2) on loopback.

It ships in pip's pyspark jars (spark-hive-thriftserver, hive-jdbc, beeline); pip's pyspark
has no start-thriftserver.sh, so this does what that script does: spark-submit the server
class with `spark-internal` as its resource. It reads spark-defaults.conf like every other
Spark process, so it has Delta and the shared metastore: JDBC clients see the tables by name.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from notellm2_udf.services.daemons import LOOPBACK, Daemon, port_open
from notellm2_udf.services.spark_home import spark_home

SERVER_CLASS = "org.apache.spark.sql.hive.thriftserver.HiveThriftServer2"
DEFAULT_PORT = 10000


@dataclass(frozen=True)
class SqlServer:
    """HiveThriftServer2 on loopback:`port`, its pid file and log in `run_dir`."""

    run_dir: Path
    port: int = DEFAULT_PORT
    master: str = "local[2]"
    conf: Mapping[str, str] = field(default_factory=dict)  # extra --conf settings

    @property
    def daemon(self) -> Daemon:
        return Daemon(f"sql-server-{self.port}", Path(self.run_dir),
                      marker=f"hive.server2.thrift.port={self.port}")

    @property
    def url(self) -> str:
        return jdbc_url(self.port)

    def command(self) -> list[str]:
        confs = {"spark.ui.enabled": "false", **self.conf}
        return [str(spark_home() / "bin" / "spark-submit"), "--class", SERVER_CLASS,
                "--name", f"notellm2-sql-server-{self.port}", "--master", self.master,
                *[arg for key, value in confs.items() for arg in ("--conf", f"{key}={value}")],
                "spark-internal",
                "--hiveconf", f"hive.server2.thrift.bind.host={LOOPBACK}",
                "--hiveconf", f"hive.server2.thrift.port={self.port}"]

    def start(self, env: Mapping[str, str] | None = None, timeout: float = 300) -> int:
        env = {**(env or os.environ), "SPARK_LOCAL_IP": LOOPBACK}
        return self.daemon.start(self.command(), env=env, timeout=timeout,
                                 ready=lambda: port_open(self.port), cwd=Path(self.run_dir))

    def running(self) -> bool:
        return self.daemon.pid() is not None and port_open(self.port)

    def stop(self, timeout: float = 60) -> bool:
        return self.daemon.stop(timeout=timeout)


def jdbc_url(port: int = DEFAULT_PORT) -> str:
    return f"jdbc:hive2://{LOOPBACK}:{port}/default"


def beeline_command(port: int, *, user: str, args: Sequence[str] = ()) -> list[str]:
    """pyspark's beeline against the server, tab-separated output without decoration."""
    return [str(spark_home() / "bin" / "beeline"), "-u", jdbc_url(port), "-n", user,
            "--silent=true", "--showHeader=true", "--outputformat=tsv2", *args]
