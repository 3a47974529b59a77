"""`cardscan detect`: find and straighten every card in photos, without identifying them."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated

import typer

PHOTO_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".heic", ".heif"}


def photo_paths(paths: list[Path]) -> list[Path]:
    """Files as given, folders walked recursively for photo suffixes, in a stable order."""
    out: list[Path] = []
    for p in paths:
        if p.is_dir():
            out += sorted(
                f for f in p.rglob("*") if f.is_file() and f.suffix.lower() in PHOTO_SUFFIXES
            )
        else:
            out.append(p)
    return out


def _debug_name(path: Path) -> str:
    return "__".join(path.with_suffix("").parts[-3:]).replace(" ", "_")


def write_debug(debug_dir: Path, path: Path, image, quads, crops) -> None:  # noqa: ANN001
    """The photo with its quads drawn (corner 0 = the card's top-left, in red) and every crop."""
    import cv2
    import numpy as np

    debug_dir.mkdir(parents=True, exist_ok=True)
    name = _debug_name(path)
    scale = min(1.0, 1600 / max(image.shape[:2]))
    shown = (
        cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        if scale < 1
        else image.copy()
    )
    for k, quad in enumerate(quads):
        q = (np.asarray(quad) * scale).astype(np.int32)
        cv2.polylines(shown, [q], True, (0, 255, 0), 2, cv2.LINE_AA)
        cv2.circle(shown, tuple(int(v) for v in q[0]), 6, (0, 0, 255), -1)
        cv2.putText(
            shown,
            str(k),
            tuple(int(v) for v in q.mean(0)),
            cv2.FONT_HERSHEY_SIMPLEX,
            1.0,
            (0, 255, 255),
            2,
        )
    cv2.imwrite(str(debug_dir / f"{name}.jpg"), shown, [cv2.IMWRITE_JPEG_QUALITY, 85])
    for k, crop in enumerate(crops):
        cv2.imwrite(str(debug_dir / f"{name}.card{k}.jpg"), crop, [cv2.IMWRITE_JPEG_QUALITY, 90])


def detect_photo(detector, path: Path, debug_dir: Path | None) -> dict:  # noqa: ANN001
    """One output record in the `cardscan scan` shape, identification fields empty."""
    from vision.decode import decode_path
    from vision.errors import ScanError
    from vision.warp import warp_card

    start = time.perf_counter()
    try:
        image = decode_path(path)
        dets = detector.predict(image)
        crops = [warp_card(image, d.quad) for d in dets]
    except ScanError as exc:
        return {
            "photo": str(path),
            "status": "failed",
            "error": f"{exc.code}: {exc.detail}",
            "elapsed_ms": round((time.perf_counter() - start) * 1000, 1),
            "cards": [],
        }
    elapsed = (time.perf_counter() - start) * 1000
    if debug_dir is not None:
        write_debug(debug_dir, path, image, [d.quad for d in dets], crops)
    cards = [
        {
            "quad": [[round(float(x), 1), round(float(y), 1)] for x, y in d.quad],
            "card_key": None,
            "name": None,
            "set_code": None,
            "number": None,
            "confidence": 0.0,
            "decision": "no_match",
            "candidates": [],
            "detection_score": round(d.score, 4),
        }
        for d in dets
    ]
    return {
        "photo": str(path),
        "status": "completed",
        "error": None,
        "elapsed_ms": round(elapsed, 1),
        "cards": cards,
    }


def main(
    paths: Annotated[list[Path], typer.Argument(help="photos or folders (walked recursively)")],
    out: Annotated[Path, typer.Option("--out", help="JSONL output, one object per photo")] = Path(
        "detections.jsonl"
    ),
    debug_dir: Annotated[
        Path | None, typer.Option("--debug-dir", help="write annotated photos and crops here")
    ] = None,
    model: Annotated[
        Path | None, typer.Option(help="detector ONNX file (default: newest in models/detector)")
    ] = None,
) -> None:
    """Find every card in photos: corners and upright crops, no identification."""
    from models.detector import CardDetector

    files = photo_paths(paths)
    if not files:
        raise typer.BadParameter("no photos found")
    detector = CardDetector(model)
    detector.warmup()
    failed = 0
    with out.open("w") as f:
        for path in files:
            record = detect_photo(detector, path, debug_dir)
            failed += record["status"] == "failed"
            f.write(json.dumps(record) + "\n")
            typer.echo(
                f"{path}: {len(record['cards'])} cards"
                + (f" FAILED {record['error']}" if record["error"] else "")
            )
    typer.echo(f"{len(files)} photos, {failed} failed -> {out}")
