"""Rows a finished scan leaves behind (users, uploads, scans, scan_cards), written directly.

Review, inventory and pricing tests start from these rather than from the recognition pipeline.
"""

from __future__ import annotations

import hashlib
import uuid
from typing import Any

from psycopg import Connection
from psycopg.types.json import Jsonb

from db.users import Role, create_user, issue_token


def make_user(conn: Connection, *, role: Role = Role.USER, name: str | None = None) -> tuple:
    """(user row, bearer token)."""
    user = create_user(conn, username=name or f"{role}-{uuid.uuid4().hex[:8]}", role=role)
    return user, issue_token(conn, user_id=user.id, name="test")


def make_scan(
    conn: Connection, *, user_id: Any, cards: list[dict], crop_keys: list[str] | None = None
) -> tuple[Any, list[Any]]:
    """A completed scan with one scan_card per dict: {card_key, confidence, decision, candidates,
    evidence}.

    Returns (scan id, scan card ids in card order).
    """
    digest = hashlib.sha256(uuid.uuid4().bytes).hexdigest()
    upload = conn.execute(
        "INSERT INTO uploads (user_id, sha256, size_bytes, media_type, storage_key) "
        "VALUES (%(u)s, %(sha)s, 100, 'image/jpeg', %(key)s) RETURNING id",
        {"u": user_id, "sha": digest, "key": f"originals/{digest}.jpg"},
    ).fetchone()["id"]
    scan = conn.execute(
        "INSERT INTO scans (user_id, upload_id, image_url, status, processed_at) "
        "VALUES (%(u)s, %(up)s, %(url)s, 'completed', now()) RETURNING id",
        {"u": user_id, "up": upload, "url": f"originals/{digest}.jpg"},
    ).fetchone()["id"]
    ids = []
    for i, card in enumerate(cards):
        candidates = card.get("candidates")
        if candidates is None:
            candidates = [{"card_key": card["card_key"], "score": card.get("confidence", 0.5)}]
        crop = (crop_keys[i] if crop_keys else None) or f"crops/{digest[:8]}-{i}.jpg"
        row = conn.execute(
            """
            INSERT INTO scan_cards (scan_id, card_index, card_id, bounding_box, quad,
                                    crop_image_url, confidence, decision, candidates, evidence)
            VALUES (%(scan)s, %(i)s, (SELECT id FROM cards WHERE card_key = %(key)s),
                    %(bbox)s, %(quad)s, %(crop)s, %(conf)s, %(decision)s, %(cands)s,
                    %(evidence)s)
            RETURNING id
            """,
            {
                "scan": scan,
                "i": i,
                "key": card.get("card_key"),
                "bbox": Jsonb([0, 0, 10, 14]),
                "quad": Jsonb([[0, 0], [10, 0], [10, 14], [0, 14]]),
                "crop": crop,
                "conf": card.get("confidence", 0.5),
                "decision": card.get("decision", "needs_review"),
                "cands": Jsonb(candidates),
                "evidence": Jsonb(card["evidence"]) if "evidence" in card else None,
            },
        ).fetchone()
        ids.append(row["id"])
    return scan, ids
