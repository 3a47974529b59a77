"""`cardscan scan PATH... --out results.jsonl`: one JSON line per photo (../shared/EVAL.md)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Iterator
from pathlib import Path

import typer

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff", ".heic", ".heif"}


def find_photos(paths: Iterable[Path]) -> Iterator[Path]:
    """Files as given; folders walked recursively (sorted) for image files."""
    for path in paths:
        if path.is_dir():
            yield from sorted(
                p for p in path.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()
            )
        else:
            yield path


def photo_record(recognizer, photo: Path, shown: str) -> dict:  # noqa: ANN001
    """Scan one photo; any failure becomes a `failed` record so the run goes on."""
    start = time.perf_counter()
    try:
        result = recognizer.recognize(photo.read_bytes())
    except Exception as exc:  # noqa: BLE001 - a bad photo must not stop a batch
        detail = getattr(exc, "detail", None) or str(exc) or type(exc).__name__
        return {
            "photo": shown,
            "status": "failed",
            "error": f"{type(exc).__name__}: {detail}",
            "elapsed_ms": round((time.perf_counter() - start) * 1000, 1),
            "cards": [],
        }
    elapsed = (time.perf_counter() - start) * 1000
    cards = [
        {
            "quad": c.quad,
            "card_key": c.card_key,
            "name": c.name,
            "set_code": c.set_code,
            "number": c.number,
            "confidence": c.confidence,
            "decision": c.decision,
            "candidates": [
                {k: cand.get(k) for k in ("card_key", "score", "name", "set_code", "number")}
                for cand in c.candidates[:5]
            ],
        }
        for c in result.cards
    ]
    return {
        "photo": shown,
        "status": "completed",
        "error": None,
        "elapsed_ms": round(elapsed, 1),
        "cards": cards,
        "timings_ms": result.timings_ms,
        "versions": result.versions,
    }


def scan_photos(photos: list[tuple[Path, str]], out: Path, recognizer=None) -> list[dict]:  # noqa: ANN001
    """Scan (path, name to report) pairs into `out`, one flushed JSON line per photo."""
    if recognizer is None:
        from pipeline.recognize import Recognizer

        recognizer = Recognizer()
        recognizer.warmup()
    out.parent.mkdir(parents=True, exist_ok=True)
    records = []
    with out.open("w", encoding="utf-8") as f:
        for photo, shown in photos:
            rec = photo_record(recognizer, photo, shown)
            f.write(json.dumps(rec) + "\n")
            f.flush()
            records.append(rec)
    return records


def main(
    paths: list[Path] = typer.Argument(..., help="photos or folders (recursive)"),
    out: Path = typer.Option(Path("results.jsonl"), "--out", help="JSONL output"),
) -> None:
    """Find and identify the cards on photos; write one JSON object per photo."""
    photos = [(p, str(p)) for p in find_photos(paths)]
    if not photos:
        raise typer.BadParameter("no image files found")
    records = scan_photos(photos, out)
    cards = [c for r in records for c in r["cards"]]
    failed = sum(r["status"] == "failed" for r in records)
    by_decision = {
        d: sum(c["decision"] == d for c in cards)
        for d in ("auto_accepted", "needs_review", "no_match")
    }
    typer.echo(
        f"{len(records)} photos ({failed} failed), {len(cards)} cards {by_decision} -> {out}"
    )
