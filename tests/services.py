"""Private PostgreSQL and Redis servers for fault tests: each on its own loopback port and data
directory, so a test can stop and start one without disturbing anything else."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from tests.seaweed import free_ports, stop_process


def _wait_until(ready, what: str, timeout: float, log: Path) -> None:  # noqa: ANN001
    deadline = time.monotonic() + timeout
    while not ready():
        if time.monotonic() > deadline:
            tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
            raise RuntimeError(f"{what} did not come up in {timeout}s: {tail}")
        time.sleep(0.1)


class PrivatePostgres:
    """PostgreSQL from the `pgserver` wheel's binaries on 127.0.0.1:<free port>.

    `stop()` then `start()` is a restart on the same data directory and port: every open
    connection breaks, and the data survives."""

    def __init__(self) -> None:
        from pgserver._commands import POSTGRES_BIN_PATH

        self.bin = POSTGRES_BIN_PATH
        # initdb refuses to run as root; pgserver runs its servers as its own system user.
        self.user = None
        if os.geteuid() == 0:
            from pgserver.utils import ensure_user_exists

            self.user = "pgserver"
            ensure_user_exists(self.user)
        # Outside pytest's tmp_path: its parents are root-only, and postgres needs to reach in.
        self.data_dir = Path(tempfile.mkdtemp(prefix="cardscan-pg-"))
        if self.user:
            shutil.chown(self.data_dir, self.user, self.user)
        self.log_path = self.data_dir / "server.log"  # written by the server's own user
        [self.port] = free_ports(1)
        self._run(
            "initdb",
            "-D",
            str(self.data_dir),
            "-U",
            "postgres",
            "--auth=trust",
            "--encoding=utf8",
            "--no-sync",
        )

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def _run(self, exe: str, *args: str, timeout: float = 60) -> None:
        subprocess.run(
            [str(self.bin / exe), *args],
            check=True,
            capture_output=True,
            timeout=timeout,
            user=self.user,
        )

    def start(self) -> None:
        # fsync off: the tests restart the server, they never crash the machine.
        options = (
            f"-h 127.0.0.1 -p {self.port} -k {self.data_dir} -F "
            "-c max_connections=60 -c shared_buffers=16MB"
        )
        self._run(
            "pg_ctl",
            "-D",
            str(self.data_dir),
            "-l",
            str(self.log_path),
            "-w",
            "-t",
            "60",
            "-o",
            options,
            "start",
            timeout=90,
        )

    def stop(self) -> None:
        """Fast shutdown: open sessions are ended, as in a restart by an operator."""
        if (self.data_dir / "postmaster.pid").exists():
            self._run("pg_ctl", "-D", str(self.data_dir), "-w", "-m", "fast", "stop")

    def destroy(self) -> None:
        try:
            self.stop()
        finally:
            shutil.rmtree(self.data_dir, ignore_errors=True)


class PrivateRedis:
    """`redis-server` on 127.0.0.1:<free port> with no persistence: a restart loses every
    queued and unacknowledged message, which is what the reaper is for."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        [self.port] = free_ports(1)
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout: float = 20.0) -> None:
        import redis

        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError("redis-server is not installed (apt-get install redis-server)")
        self.data_dir.mkdir(parents=True, exist_ok=True)
        log = self.data_dir / "redis.log"
        self.proc = subprocess.Popen(
            [
                binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.data_dir),
                "--logfile",
                str(log),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.STDOUT,
        )
        client = redis.Redis.from_url(self.url, socket_connect_timeout=1)

        def ready() -> bool:
            if self.proc.poll() is not None:
                raise RuntimeError(f"redis-server exited: {log.read_text(errors='replace')}")
            try:
                return bool(client.ping())
            except redis.RedisError:
                return False

        try:
            _wait_until(ready, "redis-server", timeout, log)
        finally:
            client.close()

    def stop(self) -> None:
        stop_process(self.proc)
        self.proc = None
