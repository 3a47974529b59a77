"""The service path of `make demo`: start `cardscan serve`, upload the DSK dev photos over HTTP as a
phone app would, poll until each scan is done, print what came back, stop the service."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

from pipeline.settings import settings


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _token(name: str = "demo") -> str:
    """A fresh bearer token for the demo user (created on the first run)."""
    cli = [sys.executable, "-m", "scripts.cli", "users"]
    made = subprocess.run([*cli, "create", name], capture_output=True, text=True)
    if made.returncode != 0:
        made = subprocess.run([*cli, "token", name], capture_output=True, text=True, check=True)
    return made.stdout.strip().splitlines()[-1]


def _wait_ready(base: str, server: subprocess.Popen, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"cardscan serve exited with {server.returncode}")
        try:
            if httpx.get(f"{base}/readyz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise SystemExit("the service did not become ready")


def main(folder: Path) -> None:
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    log_path = settings.var_dir / "demo-serve.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("ab") as log:
        server = subprocess.Popen(
            [sys.executable, "-m", "scripts.cli", "serve", "--port", str(port)],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=os.environ.copy(),
        )
    try:
        _wait_ready(base, server)
        headers = {"Authorization": f"Bearer {_token()}"}
        print(f"service up on {base} (log: {log_path}); uploading {folder}")
        pending = {}
        with httpx.Client(base_url=base, headers=headers, timeout=30) as client:
            for path in sorted(folder.glob("*.jpg")):
                resp = client.post("/v1/scans", files={"file": (path.name, path.read_bytes())})
                print(f"  POST /v1/scans {path.name} -> {resp.status_code}")
                resp.raise_for_status()
                pending[path.name] = resp.json()["status_url"]
            results = {}
            deadline = time.monotonic() + 300
            while pending and time.monotonic() < deadline:
                for name, url in list(pending.items()):
                    body = client.get(url).json()
                    if body["status"] in ("completed", "failed"):
                        results[name] = body
                        del pending[name]
                time.sleep(0.5)
        for name, body in results.items():
            print(f"{name}: {body['status']}" + (f" ({body['error']})" if body["error"] else ""))
            for card in body.get("cards", []):
                what = (
                    f"{card['name']} [{card['set_code']} {card['number']}]"
                    if card["card_key"]
                    else "no match"
                )
                conf = card["confidence"] or 0.0
                print(f"    #{card['card_index'] + 1} {card['decision']:<13} {conf:.3f}  {what}")
        for name in pending:
            print(f"{name}: still processing after 300 s")
    finally:
        server.terminate()
        try:
            server.wait(30)
        except subprocess.TimeoutExpired:
            server.kill()


if __name__ == "__main__":
    main(Path(sys.argv[1]))
