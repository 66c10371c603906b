"""The shared metastore of a one-machine installation: Derby's network server on loopback.

Embedded Derby (Spark's default) admits one JVM at a time, so an analyst's `spark-sql` could
not run beside a job. The network server holds the same database files and serves every
Spark process over JDBC (`jdbc:derby://127.0.0.1:PORT/metastore_db`). Spark's built-in Hive
client creates the schema in an empty database by itself.

Jars: derby, derbyshared and derbytools ship in pyspark's jars; derbynet (the server) and
derbyclient (the client driver Spark loads) come from Maven Central (`make setup`).
"""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

from notellm2_udf.services.daemons import LOOPBACK, Daemon, port_open
from notellm2_udf.services.spark_home import spark_home

DERBY_VERSION = "10.16.1.1"
DEFAULT_PORT = 1527
DATABASE = "metastore_db"
SERVER_CLASS = "org.apache.derby.drda.NetworkServerControl"
CLIENT_DRIVER = "org.apache.derby.jdbc.ClientDriver"
EMBEDDED_DRIVER = "org.apache.derby.jdbc.EmbeddedDriver"
DOWNLOADED_JARS = ("derbynet", "derbyclient")  # from Maven Central; the rest ship in pyspark


@dataclass(frozen=True)
class MetastoreServer:
    """Derby's network server holding `<home>/metastore_db`, on loopback:`port`."""

    home: Path
    jars_dir: Path
    port: int = DEFAULT_PORT

    @property
    def daemon(self) -> Daemon:
        return Daemon("metastore", Path(self.home), marker=f"-Dderby.system.home={self.home}")

    @property
    def url(self) -> str:
        return jdbc_url(self.port)

    def classpath(self) -> str:
        shipped = [spark_home() / "jars" / f"{name}-{DERBY_VERSION}.jar"
                   for name in ("derby", "derbyshared", "derbytools")]
        return ":".join(str(jar) for jar in shipped + downloaded_jars(self.jars_dir))

    def _control(self, *args: str) -> list[str]:
        return ["java", f"-Dderby.system.home={self.home}", "-cp", self.classpath(),
                SERVER_CLASS, *args, "-h", LOOPBACK, "-p", str(self.port)]

    def start(self, timeout: float = 120) -> int:
        """Start the server unless it runs; return its pid once it answers a ping."""
        Path(self.home).mkdir(parents=True, exist_ok=True)
        return self.daemon.start(self._control("start", "-noSecurityManager"),
                                 env=os.environ, ready=self.ping, timeout=timeout)

    def ping(self) -> bool:
        if not port_open(self.port):
            return False
        return subprocess.run(self._control("ping"), capture_output=True,
                              timeout=60).returncode == 0

    def stop(self, timeout: float = 60) -> bool:
        """Shut the server down cleanly (Derby checkpoints its files); True if one ran."""
        if self.daemon.pid() is None:
            return False
        subprocess.run(self._control("shutdown"), capture_output=True, timeout=timeout)
        return self.daemon.stop(timeout=timeout) or True


def jdbc_url(port: int) -> str:
    return f"jdbc:derby://{LOOPBACK}:{port}/{DATABASE};create=true"


def downloaded_jars(jars_dir: Path) -> list[Path]:
    """derbynet and derbyclient in `jars_dir`; FileNotFoundError names what is missing."""
    jars = [Path(jars_dir) / f"{name}-{DERBY_VERSION}.jar" for name in DOWNLOADED_JARS]
    missing = [jar.name for jar in jars if not jar.is_file()]
    if missing:
        raise FileNotFoundError(f"{', '.join(missing)} not in {jars_dir}: run `make setup`")
    return [jar.resolve() for jar in jars]


def client_jar(jars_dir: Path) -> Path:
    """The Derby client driver Spark needs on its driver's classpath."""
    return downloaded_jars(jars_dir)[1]
