"""A Spark standalone cluster on loopback: one master and N workers, each its own JVM.

pip's pyspark ships the Master and Worker classes but not start-master.sh / start-worker.sh;
`spark-class` runs them. Everything they write (logs, executor work dirs with each app's
--py-files, shuffle files) stays under `run_dir`; the workers are started without PYTHONPATH
so executors see only what the application ships (`--py-files`) and their own Python.
"""

from __future__ import annotations

import json
import os
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from notellm2_udf.services.daemons import LOOPBACK, Daemon, DaemonError, free_port, wait_until
from notellm2_udf.services.spark_home import spark_home

MASTER_CLASS = "org.apache.spark.deploy.master.Master"
WORKER_CLASS = "org.apache.spark.deploy.worker.Worker"


@dataclass(frozen=True)
class StandaloneCluster:
    """Master at spark://127.0.0.1:`port` (web UI/JSON at `ui_port`), `workers` workers of
    `cores` cores and `memory` each."""

    run_dir: Path
    port: int
    ui_port: int
    workers: int = 2
    cores: int = 1
    memory: str = "2g"

    @classmethod
    def on_free_ports(cls, run_dir: Path, **kwargs) -> StandaloneCluster:
        return cls(Path(run_dir), free_port(), free_port(), **kwargs)

    @property
    def master_url(self) -> str:
        return f"spark://{LOOPBACK}:{self.port}"

    def _daemon(self, name: str) -> Daemon:
        return Daemon(name, Path(self.run_dir), marker=f"--port {self.port}"
                      if name == "master" else f"{self.master_url} ")

    def _env(self, env: Mapping[str, str] | None) -> dict[str, str]:
        run = Path(self.run_dir)
        env = {key: value for key, value in (env or os.environ).items() if key != "PYTHONPATH"}
        env.update(SPARK_LOCAL_IP=LOOPBACK, SPARK_LOG_DIR=str(run / "logs"),
                   SPARK_WORKER_DIR=str(run / "work"), SPARK_LOCAL_DIRS=str(run / "local"),
                   SPARK_NO_DAEMONIZE="1")
        for key in ("SPARK_LOG_DIR", "SPARK_WORKER_DIR", "SPARK_LOCAL_DIRS"):
            Path(env[key]).mkdir(parents=True, exist_ok=True)
        return env

    def start(self, env: Mapping[str, str] | None = None, timeout: float = 300) -> None:
        """Start the master, then the workers; return when all workers are ALIVE."""
        env = self._env(env)
        spark_class = str(spark_home() / "bin" / "spark-class")
        try:
            self._daemon("master").start(
                [spark_class, MASTER_CLASS, "--host", LOOPBACK, "--port", str(self.port),
                 "--webui-port", str(self.ui_port)],
                env=env, ready=lambda: self.alive_workers() is not None, timeout=timeout,
                cwd=Path(self.run_dir))
            for number in range(1, self.workers + 1):
                self._daemon(f"worker-{number}").start(
                    [spark_class, WORKER_CLASS, self.master_url, "--host", LOOPBACK,
                     "--cores", str(self.cores), "--memory", self.memory,
                     "--webui-port", str(free_port())],
                    env=env, ready=lambda: True, timeout=timeout, cwd=Path(self.run_dir))
            wait_until(lambda: (self.alive_workers() or 0) >= self.workers, timeout,
                              f"{self.workers} workers ALIVE at {self.master_url}")
        except BaseException:
            self.stop()
            raise

    def alive_workers(self) -> int | None:
        """Workers the master reports ALIVE; None while the master does not answer."""
        try:
            with urllib.request.urlopen(f"http://{LOOPBACK}:{self.ui_port}/json/",
                                        timeout=2) as response:
                state = json.load(response)
        except OSError:
            return None
        return sum(worker["state"] == "ALIVE" for worker in state["workers"])

    def stop(self) -> None:
        for number in range(self.workers, 0, -1):
            self._daemon(f"worker-{number}").stop()
        self._daemon("master").stop()


__all__ = ["StandaloneCluster", "DaemonError"]
