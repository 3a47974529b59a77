"""Load test of the scan service (a benchmark, not a test): N uploads from C concurrent clients.

Prints p50/p99 upload latency, errors, the time until every scan finished, and scans per minute
with the worker(s) the service runs. With --spawn it starts `cardscan serve` itself (embedded
defaults, or whatever CARDSCAN_* variables say) and creates a user; otherwise pass --url and
--token of a running service.

    .venv/bin/python scripts/load_test.py --spawn --n 500 --concurrency 20
"""

from __future__ import annotations

import argparse
import asyncio
import io
import os
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx
import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
VAR = Path(os.environ.get("CARDSCAN_VAR_DIR", ROOT / "var"))


def synthetic_photos(n: int, size: tuple[int, int] = (640, 480)) -> list[bytes]:
    """n distinct JPEGs (distinct bytes, so none is deduplicated into another's scan)."""
    rng = np.random.default_rng(0)
    base = rng.integers(0, 255, size=(size[1], size[0], 3), dtype=np.uint8)
    out = []
    for i in range(n):
        pixels = base.copy()
        # A 32x32 block of the photo's own noise: survives JPEG as distinct bytes.
        pixels[:32, :32] = np.random.default_rng(i + 1).integers(0, 255, (32, 32, 3), np.uint8)
        buf = io.BytesIO()
        Image.fromarray(pixels).save(buf, format="JPEG", quality=85)
        out.append(buf.getvalue())
    return out


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q / 100 * (len(ordered) - 1))))]


def spawn(port: int) -> tuple[subprocess.Popen, str]:
    """Start `cardscan serve` and create a user; returns the process and a token."""
    cli = [sys.executable, "-m", "scripts.cli"]
    VAR.mkdir(parents=True, exist_ok=True)
    log = open(VAR / "load_test_serve.log", "ab")  # noqa: SIM115 - lives with proc
    proc = subprocess.Popen(
        [*cli, "serve", "--port", str(port)],
        cwd=ROOT,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        if proc.poll() is not None:
            raise SystemExit(f"cardscan serve exited; see {VAR / 'load_test_serve.log'}")
        time.sleep(0.5)
    out = subprocess.run(
        [*cli, "users", "create", f"load-{uuid.uuid4().hex[:8]}"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    return proc, out.stdout.strip().splitlines()[-1]


async def upload_all(url: str, token: str, photos: list[bytes], concurrency: int):
    latencies: list[float] = []
    errors: dict[str, int] = {}
    ids: list[str] = []
    queue: asyncio.Queue = asyncio.Queue()
    for i, data in enumerate(photos):
        queue.put_nowait((i, data))
    headers = {"Authorization": f"Bearer {token}"}

    async def client() -> None:
        async with httpx.AsyncClient(base_url=url, headers=headers, timeout=30) as http:
            while not queue.empty():
                i, data = queue.get_nowait()
                start = time.perf_counter()
                try:
                    r = await http.post("/v1/scans", files={"file": (f"{i}.jpg", data)})
                    latencies.append((time.perf_counter() - start) * 1e3)
                    if r.status_code == 202:
                        ids.append(r.json()["scan_id"])
                    else:
                        errors[str(r.status_code)] = errors.get(str(r.status_code), 0) + 1
                except httpx.HTTPError as exc:
                    errors[type(exc).__name__] = errors.get(type(exc).__name__, 0) + 1

    await asyncio.gather(*(client() for _ in range(concurrency)))
    return latencies, errors, ids


def wait_done(url: str, token: str, n: int, timeout: float) -> dict[str, int]:
    headers = {"Authorization": f"Bearer {token}"}
    deadline = time.monotonic() + timeout
    counts: dict[str, int] = {}
    while time.monotonic() < deadline:
        counts = {
            s: httpx.get(
                f"{url}/v1/scans", params={"status": s, "limit": 1}, headers=headers, timeout=10
            ).json()["total"]
            for s in ("pending", "processing", "completed", "failed")
        }
        if counts["completed"] + counts["failed"] >= n:
            break
        time.sleep(1)
    return counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="http://127.0.0.1:8000")
    parser.add_argument("--token", default=os.environ.get("CARDSCAN_TOKEN"))
    parser.add_argument("--spawn", action="store_true", help="start `cardscan serve` first")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--n", type=int, default=500)
    parser.add_argument("--concurrency", type=int, default=20)
    parser.add_argument("--timeout", type=float, default=1800)
    args = parser.parse_args()

    proc = None
    if args.spawn:
        proc, args.token = spawn(args.port)
        args.url = f"http://127.0.0.1:{args.port}"
    if not args.token:
        raise SystemExit("pass --token (or CARDSCAN_TOKEN), or --spawn")
    try:
        photos = synthetic_photos(args.n)
        print(
            f"{args.n} uploads of ~{sum(map(len, photos)) // len(photos) // 1024} KB, "
            f"{args.concurrency} concurrent clients -> {args.url}"
        )
        start = time.perf_counter()
        latencies, errors, ids = asyncio.run(
            upload_all(args.url, args.token, photos, args.concurrency)
        )
        uploaded = time.perf_counter() - start
        print(
            f"uploads: {len(ids)} accepted in {uploaded:.1f} s "
            f"({len(latencies) / uploaded:.0f}/s); errors: {sum(errors.values())} {errors}"
        )
        print(
            f"upload latency ms: p50 {statistics.median(latencies):.1f}  "
            f"p99 {percentile(latencies, 99):.1f}  max {max(latencies):.1f}"
        )
        counts = wait_done(args.url, args.token, len(ids), args.timeout)
        elapsed = time.perf_counter() - start
        done = counts.get("completed", 0) + counts.get("failed", 0)
        print(f"scans: {counts} after {elapsed:.1f} s")
        print(f"throughput: {done / elapsed * 60:.0f} scans/min (first upload to last scan done)")
    finally:
        if proc is not None:
            proc.terminate()
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()


if __name__ == "__main__":
    main()
