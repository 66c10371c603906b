"""Background processes the project starts and stops itself: one pid file per daemon.

A daemon runs in its own session (so the shell that started it can exit), writes its output
to `<run_dir>/<name>.log` and is known by `<run_dir>/<name>.pid`. A pid file is trusted only
while that pid's command line still contains the daemon's `marker` (pids are reused), so a
stale file after a reboot or a crash reads as "not running", never as somebody else's process.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

LOOPBACK = "127.0.0.1"


class DaemonError(RuntimeError):
    """A daemon did not start, or did not stop, in time."""


@dataclass(frozen=True)
class Daemon:
    """A named background process: its pid file and log live in `run_dir`."""

    name: str
    run_dir: Path
    marker: str  # a string of its command line that identifies it (class name, path)

    @property
    def pid_file(self) -> Path:
        return Path(self.run_dir) / f"{self.name}.pid"

    @property
    def log_file(self) -> Path:
        return Path(self.run_dir) / f"{self.name}.log"

    def pid(self) -> int | None:
        """The pid of the running daemon, or None (a stale pid file is removed)."""
        try:
            pid = int(self.pid_file.read_text().strip())
        except (OSError, ValueError):
            return None
        if _command_line(pid) is not None and self.marker in _command_line(pid):
            return pid
        self.pid_file.unlink(missing_ok=True)
        return None

    def start(self, command: Sequence[str], *, env: Mapping[str, str] | None = None,
              ready: Callable[[], bool], timeout: float, cwd: Path | None = None) -> int:
        """Start `command` unless already running; wait until `ready()`; return the pid.

        On a timeout, or when the process exits first, it is stopped and DaemonError tells
        where its log is."""
        running = self.pid()
        if running is not None:
            return running
        Path(self.run_dir).mkdir(parents=True, exist_ok=True)
        with self.log_file.open("ab") as log:
            process = subprocess.Popen(list(command), env=dict(env or os.environ), cwd=cwd,
                                       stdin=subprocess.DEVNULL, stdout=log,
                                       stderr=subprocess.STDOUT, start_new_session=True)
        self.pid_file.write_text(f"{process.pid}\n")
        deadline = time.monotonic() + timeout
        while not ready():
            if process.poll() is not None:
                self.pid_file.unlink(missing_ok=True)
                raise DaemonError(f"{self.name} exited with {process.returncode}; "
                                  f"see {self.log_file}")
            if time.monotonic() > deadline:
                self.stop()
                raise DaemonError(f"{self.name} not ready after {timeout:.0f}s; "
                                  f"see {self.log_file}")
            time.sleep(0.3)
        return process.pid

    def stop(self, timeout: float = 60) -> bool:
        """SIGTERM the daemon's process group, SIGKILL after `timeout`; True if one ran."""
        pid = self.pid()
        if pid is None:
            return False
        _signal_group(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while _alive(pid) and time.monotonic() < deadline:
            time.sleep(0.2)
        if _alive(pid):
            _signal_group(pid, signal.SIGKILL)
            while _alive(pid):
                time.sleep(0.1)
        self.pid_file.unlink(missing_ok=True)
        return True


def wait_until(condition: Callable[[], bool], timeout: float, what: str) -> None:
    """Poll `condition` until true; DaemonError naming `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise DaemonError(f"not {what} after {timeout:.0f}s")
        time.sleep(0.3)


def port_open(port: int, host: str = LOOPBACK) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


def free_port() -> int:
    """A TCP port on loopback that nothing listens on now (for tests)."""
    with socket.socket() as sock:
        sock.bind((LOOPBACK, 0))
        return sock.getsockname()[1]


def _command_line(pid: int) -> str | None:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return None


def _alive(pid: int) -> bool:
    try:
        # Reap it if it is our child (tests start daemons in-process).
        if os.waitpid(pid, os.WNOHANG)[0] == pid:
            return False
    except ChildProcessError:
        pass
    status = Path(f"/proc/{pid}/stat")
    try:
        return status.read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def _signal_group(pid: int, sig: signal.Signals) -> None:
    try:
        os.killpg(pid, sig)
    except ProcessLookupError:
        pass
    except PermissionError:
        os.kill(pid, sig)
