"""The one SparkSession builder used by every job and test.

Precedence, as spark-submit users expect: explicit `overrides` (tests, code) > `--conf` on the
command line > `spark-defaults.conf` > the project defaults below. The project defaults only
fill keys nobody set, so a cluster's own configuration always wins.

Locally, `make setup` writes the venv's `pyspark/conf/spark-defaults.conf` (see
`local_spark_defaults`): Delta jars from the local cache, the warehouse under one directory,
the metastore served by Derby's network server on loopback (`notellm2 metastore start`), and
the venv's Python for workers. Every Spark process started from the venv (`spark-submit`,
`spark-sql`, the SQL server, `python`) then shares one catalog, at the same time: a table
registered by a job is queryable by name from another process while the job still runs.
Tests use a private embedded metastore instead (`metastore_conf` without a server).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from pyspark import SparkConf, SparkContext
from pyspark.sql import SparkSession

DELTA_VERSION = "4.0.1"
DELTA_PACKAGES = (
    f"io.delta:delta-spark_2.13:{DELTA_VERSION}",
    f"io.delta:delta-storage:{DELTA_VERSION}",
)
LOOPBACK = "127.0.0.1"

PROJECT_DEFAULTS: Mapping[str, str] = {
    "spark.sql.extensions": "io.delta.sql.DeltaSparkSessionExtension",
    "spark.sql.catalog.spark_catalog": "org.apache.spark.sql.delta.catalog.DeltaCatalog",
    "spark.sql.catalogImplementation": "hive",
    "spark.sql.session.timeZone": "UTC",
    "spark.sql.execution.arrow.pyspark.enabled": "true",
    # Partition overwrite by replaceWhere must not silently widen to the whole table.
    "spark.databricks.delta.replaceWhere.constraintCheck.enabled": "true",
}


# The driver JVM's JIT stops at C1: a spark-submit of a small day spends seconds of its two
# cores compiling hot code with C2 that it then barely runs (docs/BENCHMARKS.md, "Fixed cost
# of a daily job"). In local mode the driver JVM runs the tasks too, so JVM-bound work of a
# big day runs C1 code: opt in (`notellm2 spark-defaults --quick-jit`) for small days only.
QUICK_JIT_JAVA_OPTIONS = "-XX:TieredStopAtLevel=1"


@dataclass(frozen=True)
class SparkSettings:
    """How to build the session. `overrides` win over everything, including `--conf`."""

    app_name: str = "notellm2"
    master: str | None = None
    overrides: Mapping[str, str] = field(default_factory=dict)


class DeltaNotOnClasspathError(RuntimeError):
    """Spark started without the Delta Lake jars."""


def build_spark_session(settings: SparkSettings = SparkSettings()) -> SparkSession:
    """Return the active session, or start one with Delta, Hive catalog and loopback binding."""
    already_set = _conf_already_set()
    master = settings.master or already_set.get("spark.master") or "local[*]"
    conf = {key: value for key, value in PROJECT_DEFAULTS.items() if key not in already_set}
    if "spark.pyspark.python" not in already_set and "PYSPARK_PYTHON" not in os.environ:
        conf["spark.pyspark.python"] = sys.executable
    if master.startswith("local"):
        os.environ.setdefault("SPARK_LOCAL_IP", LOOPBACK)
        for key in ("spark.driver.host", "spark.driver.bindAddress"):
            if key not in already_set:
                conf[key] = LOOPBACK
    conf.update(settings.overrides)

    builder = SparkSession.builder.appName(settings.app_name).master(master)
    for key, value in conf.items():
        builder = builder.config(key, value)
    spark = builder.enableHiveSupport().getOrCreate()
    _check_delta_available(spark)
    return spark


def _conf_already_set() -> dict[str, str]:
    """Keys set by spark-submit (`--conf`, spark-defaults.conf) or an earlier session.

    Before a JVM exists, PySpark's SparkConf cannot see spark-defaults.conf, yet the JVM it is
    about to launch will read it; read the file ourselves so its values keep their precedence.
    """
    if SparkContext._gateway is not None or "PYSPARK_GATEWAY_PORT" in os.environ:
        SparkContext._ensure_initialized()
        return dict(SparkConf().getAll())
    return read_spark_defaults(spark_conf_dir())


def spark_conf_dir() -> Path:
    """The directory spark-submit reads spark-defaults.conf from (SPARK_CONF_DIR rules)."""
    if os.environ.get("SPARK_CONF_DIR"):
        return Path(os.environ["SPARK_CONF_DIR"])
    from pyspark.find_spark_home import _find_spark_home

    return Path(_find_spark_home()) / "conf"


def read_spark_defaults(conf_dir: Path) -> dict[str, str]:
    """Parse spark-defaults.conf: `key value` lines, `#` comments (Spark's own format)."""
    path = conf_dir / "spark-defaults.conf"
    if not path.is_file():
        return {}
    settings = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        key, _, value = line.partition(" ")
        settings[key] = value.strip()
    return settings


def local_spark_defaults(jars: list[Path], lakehouse_dir: Path, python: str,
                         metastore: MetastoreEndpoint | None = None, *,
                         quick_jit: bool = False) -> dict[str, str]:
    """spark-defaults.conf entries for a one-machine installation.

    `lakehouse_dir` holds the warehouse and the metastore's Derby database. With `metastore`
    the database is reached through Derby's network server (any number of Spark processes at
    once); without, it is embedded (one Spark process at a time). `quick_jit` adds
    QUICK_JIT_JAVA_OPTIONS to the driver's JVM options.
    """
    lakehouse_dir = lakehouse_dir.resolve()
    jars = [jar.resolve() for jar in jars]
    metastore_settings = metastore_conf(lakehouse_dir, metastore)
    if quick_jit:
        metastore_settings["spark.driver.extraJavaOptions"] += " " + QUICK_JIT_JAVA_OPTIONS
    # The driver's classpath too: the SQL server's session threads and the metastore client
    # load classes from it, not from spark.jars' class loader.
    driver_classpath = [str(jar) for jar in jars]
    if metastore is not None:
        driver_classpath.insert(0, str(Path(metastore.client_jar).resolve()))
    return {
        "spark.jars": ",".join(str(jar) for jar in jars),
        "spark.driver.extraClassPath": ":".join(driver_classpath),
        **PROJECT_DEFAULTS,
        **metastore_settings,
        "spark.pyspark.python": python,
        "spark.pyspark.driver.python": python,
        # Two cores, small tables: Spark's cluster-sized defaults only add empty tasks.
        "spark.sql.shuffle.partitions": "8",
        "spark.databricks.delta.snapshotPartitions": "4",
    }


@dataclass(frozen=True)
class MetastoreEndpoint:
    """A Derby network server holding the metastore: its JDBC URL and client driver jar."""

    url: str
    client_jar: Path


# Spark's own default logs every metastore and Hadoop warning of a one-machine install;
# keep warnings of our jobs and errors of everything else.
LOCAL_LOG4J2_PROPERTIES = """\
rootLogger.level = warn
rootLogger.appenderRef.stderr.ref = console
appender.console.type = Console
appender.console.name = console
appender.console.target = SYSTEM_ERR
appender.console.layout.type = PatternLayout
appender.console.layout.pattern = %d{yy/MM/dd HH:mm:ss} %p %c{1}: %m%n%ex
logger.quiet_hive.name = org.apache.hadoop.hive
logger.quiet_hive.level = error
logger.quiet_catalog.name = org.apache.spark.sql.hive
logger.quiet_catalog.level = error
logger.quiet_native.name = org.apache.hadoop.util.NativeCodeLoader
logger.quiet_native.level = error
logger.quiet_tasks.name = org.apache.spark.scheduler.TaskSetManager
logger.quiet_tasks.level = error
logger.quiet_strings.name = org.apache.spark.sql.catalyst.util.SparkStringUtils
logger.quiet_strings.level = error
"""


def metastore_conf(lakehouse_dir: Path,
                   server: MetastoreEndpoint | None = None) -> dict[str, str]:
    """Warehouse and metastore settings rooted at one directory: embedded Derby in
    `lakehouse_dir/metastore_db`, or the same database through `server`."""
    lakehouse_dir = Path(lakehouse_dir).resolve()
    if server is None:
        url = f"jdbc:derby:;databaseName={lakehouse_dir / 'metastore_db'};create=true"
        driver = "org.apache.derby.jdbc.EmbeddedDriver"
    else:
        url, driver = server.url, "org.apache.derby.jdbc.ClientDriver"
    return {
        "spark.sql.warehouse.dir": str(lakehouse_dir / "warehouse"),
        "spark.hadoop.javax.jdo.option.ConnectionURL": url,
        "spark.hadoop.javax.jdo.option.ConnectionDriverName": driver,
        "spark.driver.extraJavaOptions": (
            f"-Dderby.stream.error.file={lakehouse_dir / 'derby.log'}"
        ),
    }


def format_spark_defaults(settings: Mapping[str, str]) -> str:
    lines = ["# Written by `notellm2 spark-defaults` (make setup). Regenerate, don't edit."]
    lines += [f"{key} {value}" for key, value in settings.items()]
    return "\n".join(lines) + "\n"


def _check_delta_available(spark: SparkSession) -> None:
    # Jars given to spark-submit live in the context class loader, not the system one.
    loader = spark._jvm.java.lang.Thread.currentThread().getContextClassLoader()
    try:
        loader.loadClass("io.delta.tables.DeltaTable")
    except Exception as err:  # py4j wraps ClassNotFoundException
        raise DeltaNotOnClasspathError(
            "Delta Lake jars are not on Spark's classpath: run `make setup` (it writes "
            "spark-defaults.conf for the local venv) or pass "
            f"--packages {','.join(DELTA_PACKAGES)} to spark-submit"
        ) from err


@contextmanager
def session_conf(spark: SparkSession, settings: Mapping[str, str]) -> Iterator[None]:
    """`settings` in the session for the body only; the previous values afterwards."""
    previous = {key: spark.conf.get(key, None) for key in settings}
    for key, value in settings.items():
        spark.conf.set(key, value)
    try:
        yield
    finally:
        for key, value in previous.items():
            if value is None:
                spark.conf.unset(key)
            else:
                spark.conf.set(key, value)
