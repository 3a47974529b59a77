"""A self-contained HTML report of scans: each photo with its quads, each crop beside the
catalog image it matched, the decision and confidence. Images are inlined as data URIs so the
file opens in a browser with no server."""

from __future__ import annotations

import base64
import html
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from db import cards as cards_db
from db import scans as scans_db
from db.pool import connection
from pipeline.storage import Storage, open_storage
from vision.decode import decode_image
from vision.errors import ScanError

COLORS = {"auto_accepted": (80, 175, 76), "needs_review": (0, 165, 255), "no_match": (60, 60, 220)}
PHOTO_MAX_SIDE = 900
THUMB_HEIGHT = 180

STYLE = """
body{font:14px system-ui,sans-serif;margin:24px;background:#fafafa;color:#222}
section{background:#fff;border:1px solid #ddd;border-radius:8px;padding:16px;margin:0 0 20px}
h2{font-size:15px;margin:0 0 8px;word-break:break-all} .photo{max-width:100%;height:auto}
.cards{display:flex;flex-wrap:wrap;gap:12px;margin-top:12px}
.card{border:1px solid #eee;border-radius:6px;padding:8px;width:320px}
.card img{height:180px;margin-right:6px} .auto_accepted{color:#2e7d32} .needs_review{color:#e65100}
.no_match{color:#c62828} .failed{color:#c62828;font-weight:600} .meta{color:#666}
"""


def _data_uri(image: np.ndarray, quality: int = 80) -> str:
    ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])
    return "data:image/jpeg;base64," + base64.b64encode(buf.tobytes()).decode() if ok else ""


def _resize_to(image: np.ndarray, *, max_side: int | None = None, height: int | None = None):  # noqa: ANN202
    h, w = image.shape[:2]
    scale = height / h if height else min(1.0, max_side / max(h, w)) if max_side else 1.0
    if scale == 1.0:
        return image, 1.0
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA), scale


def _thumb(storage: Storage, key: str | None) -> str:
    if not key:
        return ""
    try:
        image = decode_image(storage.get(key), max_pixels=50_000_000)
    except ScanError:
        return ""
    return _data_uri(_resize_to(image, height=THUMB_HEIGHT)[0])


def _failed(title: str, message: str) -> str:
    return f"<section>{title}<p class=failed>{html.escape(message)}</p></section>"


def _photo_section(conn: Any, storage: Storage, name: str, scan_id: Any) -> str:
    scan = scans_db.get_scan(conn, scan_id=scan_id)
    title = f"<h2>{html.escape(name)}</h2>"
    if scan is None:
        return _failed(title, "scan not found")
    if scan.status != "completed":
        return _failed(title, f"{scan.status}: {scan.error_message or 'not processed yet'}")
    cards = scans_db.list_scan_cards(conn, scan_id=scan_id)
    try:
        photo = decode_image(storage.get(scan.image_url), max_pixels=200_000_000)
    except ScanError as exc:
        return _failed(title, exc.detail)
    small, scale = _resize_to(photo, max_side=PHOTO_MAX_SIDE)
    for card in cards:
        quad = (np.asarray(card.quad, np.float32) * scale).astype(np.int32)
        color = COLORS.get(str(card.decision), (200, 200, 200))
        cv2.polylines(small, [quad], True, color, 3)
        cv2.putText(
            small,
            str(card.card_index + 1),
            tuple(int(v) for v in quad[0]),
            cv2.FONT_HERSHEY_SIMPLEX,
            0.9,
            color,
            2,
        )
    items = []
    for card in cards:
        match = cards_db.get_card(conn, card_key=card.card_key) if card.card_key else None
        label = (
            (
                f"{html.escape(card.name or '')} · {html.escape(card.set_code or '')} "
                f"{html.escape(card.number or '')}"
            )
            if card.card_key
            else "no match"
        )
        conf = f"{card.confidence:.3f}" if card.confidence is not None else "–"
        items.append(
            f"<div class=card><div><img alt='crop' src='{_thumb(storage, card.crop_key)}'>"
            f"<img alt='catalog' src='{_thumb(storage, match.image_key if match else None)}'>"
            f"</div><div>#{card.card_index + 1} <b>{label}</b></div>"
            f"<div class='{card.decision}'>{card.decision} · confidence {conf}</div></div>"
        )
    return (
        f"<section>{title}<img class=photo alt='photo' src='{_data_uri(small)}'>"
        f"<p class=meta>{len(cards)} card(s)</p><div class=cards>{''.join(items)}</div>"
        "</section>"
    )


def write_report(
    out: Path,
    scans: dict[str, Any],
    *,
    title: str = "cardscan ingest report",
    summary: dict[str, int] | None = None,
    skipped: list[tuple[str, str]] | None = None,
    storage: Storage | None = None,
) -> None:
    """Write one HTML file covering `scans` (display name -> scan id)."""
    storage = storage or open_storage()
    parts = [
        f"<!doctype html><meta charset=utf-8><title>{html.escape(title)}</title>",
        f"<style>{STYLE}</style><h1>{html.escape(title)}</h1>",
    ]
    if summary:
        parts.append("<p>" + " · ".join(f"{k}: <b>{v}</b>" for k, v in summary.items()) + "</p>")
    with connection() as conn:
        for name, scan_id in scans.items():
            parts.append(_photo_section(conn, storage, name, scan_id))
    if skipped:
        rows = "".join(f"<li>{html.escape(p)}: {html.escape(r)}</li>" for p, r in skipped)
        parts.append(f"<section><h2>skipped</h2><ul>{rows}</ul></section>")
    out.write_text("".join(parts), encoding="utf-8")
