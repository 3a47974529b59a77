"""`cardscan bench`: figures as medians over repeated runs, with the machine described."""

from __future__ import annotations

import os
import platform
import statistics
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import typer

STAGES = ("decode", "detect", "warp", "embed", "search", "text", "verify", "match")


SIMD = (  # the first of these flags the CPU has names it
    ("avx512_vnni", "AVX-512 VNNI"),
    ("avx_vnni", "AVX-VNNI"),
    ("avx512f", "AVX-512 without VNNI"),
    ("avx2", "AVX2 without VNNI"),
)


def machine() -> str:
    """The CPU as /proc/cpuinfo names it, with its family / model (a virtual machine's name can
    hide the generation) and its widest int8 instructions, which set the models' speed."""
    cpu, info = "unknown CPU", {}
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            info.setdefault(key.strip(), value.strip())
    except OSError:
        pass
    if "model name" in info:
        flags = set(info.get("flags", "").split())
        simd = next(
            (name for flag, name in SIMD if flag in flags), "no AVX2" if flags else "flags unknown"
        )
        kind = f"family {info.get('cpu family')} model {info.get('model')}"
        cpu = f"{info['model name']} ({kind}, {simd})"
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    return f"{cpu}, {os.cpu_count()} cores, load average {load}, Python {platform.python_version()}"


# Crops are verified and read side by side (`CARDSCAN_MATCH_THREADS`): those two stages are sums
# over the crops, and `match` is the wall time they took together.
LABELS = {
    "text": "text (summed over cards)",
    "verify": "verify (summed over cards)",
    "match": "match: verify + text, wall time",
}


def _median_table(rows: dict[str, list[float]]) -> list[str]:
    return [f"| {LABELS.get(k, k)} | {statistics.median(v):.1f} |" for k, v in rows.items() if v]


def bench_stages(photo: bytes, repeats: int, device: str) -> dict[str, list[float]]:
    """Per-stage and end-to-end milliseconds of one photo through the Recognizer."""
    from models.settings import settings as model_settings
    from pipeline.recognize import Recognizer

    if device == "cuda":
        model_settings.providers = ["CUDAExecutionProvider", "CPUExecutionProvider"]
    recognizer = Recognizer()
    recognizer.load()
    recognizer.warmup()
    rows: dict[str, list[float]] = {s: [] for s in (*STAGES, "total")}
    cards = 0
    for _ in range(repeats):
        t = time.perf_counter()
        result = recognizer.recognize(photo)
        rows["total"].append((time.perf_counter() - t) * 1000)
        for stage, ms in result.timings_ms.items():
            rows.setdefault(stage, []).append(ms)
        cards = len(result.cards)
    rows["cards found"] = [float(cards)]
    return rows


def bench_db_write(cards: int, repeats: int) -> list[float]:
    """Milliseconds to write one scan's cards and final status in one transaction."""
    import uuid

    from db import scans as scans_db
    from db import uploads as uploads_db
    from db import users as users_db
    from db.pool import connection

    times = []
    with connection() as conn, conn.transaction():
        user = users_db.get_user_by_name(conn, username="bench") or users_db.create_user(
            conn, username="bench"
        )
    rows = [
        scans_db.ScanCardIn(
            card_index=k,
            quad=[[0, 0], [10, 0], [10, 14], [0, 14]],
            crop_key=None,
            card_key="dsk-194",
            name="x",
            set_code="DSK",
            number="194",
            confidence=0.99,
            decision=scans_db.Decision.AUTO_ACCEPTED,
            candidates=[{"card_key": "dsk-194", "score": 0.99}],
        )
        for k in range(cards)
    ]
    for _ in range(repeats):
        with connection() as conn, conn.transaction():  # a scan row to write into (not timed)
            upload, _ = uploads_db.insert_upload(
                conn,
                user_id=user.id,
                sha256=uuid.uuid4().hex * 2,
                size_bytes=1,
                media_type="image/jpeg",
                width=1,
                height=1,
                storage_key="bench",
                original_filename=None,
            )
            scan_id = scans_db.insert_scan(
                conn,
                user_id=user.id,
                upload_id=upload.id,
                image_url="bench",
                trigger=scans_db.Trigger.CLI,
            )
        t = time.perf_counter()
        with connection() as conn, conn.transaction():
            scans_db.replace_scan_cards(conn, scan_id=scan_id, cards=rows)
            scans_db.complete_scan(conn, scan_id=scan_id, model_versions={}, n_cards=cards)
        times.append((time.perf_counter() - t) * 1000)
    return times


def bench_worker(photos: list[bytes]) -> tuple[float, int, float]:
    """Cards per second end to end through a real worker: (cards/s, cards, seconds)."""
    from db import users as users_db
    from db.pool import connection
    from pipeline.ingest import register_folder, wait_for_scans
    from scripts.ingest_cmd import local_worker

    with connection() as conn, conn.transaction():
        user = users_db.get_user_by_name(conn, username="bench") or users_db.create_user(
            conn, username="bench"
        )
    with tempfile.TemporaryDirectory() as tmp, local_worker(True):
        for i, data in enumerate(photos):
            # A per-run suffix after the JPEG's end makes new bytes, so nothing dedupes.
            Path(tmp, f"{i:04d}.jpg").write_bytes(data + os.urandom(16))
        time.sleep(5)  # let the worker load and warm up its models before the clock starts
        t = time.perf_counter()
        summary = register_folder(Path(tmp), user_id=user.id)
        wait_for_scans(summary, timeout_s=1800)
        seconds = time.perf_counter() - t
    return summary.cards / seconds, summary.cards, seconds


def main(
    repeats: int = typer.Option(20, help="Runs per figure (medians are reported)."),
    device: str = typer.Option("cpu", help="cpu or cuda (ONNX Runtime's CUDA provider)."),
    faiss_sizes: str = typer.Option("10000,100000,1000000", help="Index sizes to measure."),
    write: Path = typer.Option(
        None, help="Also write the figures as Markdown (docs/BENCHMARKS.md)."
    ),
    skip_models: bool = typer.Option(False, help="Only FAISS (no detector/embedder needed)."),
    worker_photos: int = typer.Option(20, help="Binder pages sent through a real worker."),
) -> None:
    """Per-stage latency (1 and 9 cards), database write, FAISS at scale; medians."""
    from scripts.bench_faiss import bench_faiss

    lines = [
        "# cardscan benchmarks",
        "",
        f"Measured {datetime.now(UTC):%Y-%m-%d %H:%M} UTC on: {machine()}.",
        f"Device: {device}. Medians over {repeats} runs unless said otherwise.",
        "",
    ]

    if not skip_models:
        from scripts.bench_photos import binder_page_photo, single_card_photo

        for label, photo in (
            ("1-card photo", single_card_photo()),
            ("9-card binder page (12 MP)", binder_page_photo()),
        ):
            rows = bench_stages(photo, repeats, device)
            lines += [f"## {label}", "", "| stage | median ms |", "|---|---|", *_median_table(rows)]
            total = statistics.median(rows["total"])
            n = rows["cards found"][0]
            if n:
                lines.append(f"| cards per second (one process) | {1000 * n / total:.1f} |")
            lines.append("")
        for n in (1, 9):
            times = bench_db_write(n, repeats)
            lines.append(f"Database write of a {n}-card scan: {statistics.median(times):.1f} ms  ")
        rate, cards, seconds = bench_worker(
            [binder_page_photo(seed=i) for i in range(worker_photos)]
        )
        lines += [
            f"End to end through one real worker ({worker_photos} binder pages, upload to "
            f"completed): {cards} cards in {seconds:.1f} s = **{rate:.1f} cards/s**",
            "",
        ]

    lines += [
        "## FAISS (256-d, clustered synthetic vectors, one thread per query)",
        "",
        "| vectors | index | build s | memory MB | p50 ms | p95 ms | recall@1 |",
        "|---|---|---|---|---|---|---|",
    ]
    for n in (int(x) for x in faiss_sizes.split(",") if x):
        r = bench_faiss(n)
        lines.append(
            f"| {r.n:,} | {r.kind} | {r.build_s:.1f} | {r.memory_mb:.0f} | "
            f"{r.p50_ms:.2f} | {r.p95_ms:.2f} | {r.recall_at_1:.3f} |"
        )
        typer.echo(lines[-1], err=True)
    text = "\n".join(lines) + "\n"
    typer.echo(text)
    if write:
        write.parent.mkdir(parents=True, exist_ok=True)
        write.write_text(text, encoding="utf-8")
        typer.echo(f"written to {write}", err=True)
