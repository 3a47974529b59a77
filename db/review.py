"""SQL for the review queue: lease the least sure card, then confirm, correct or reject it.

A lease is a row-level claim (`lease_owner`, `lease_expires_at`) taken with
`FOR UPDATE SKIP LOCKED`, so annotators asking at the same moment get different cards; a lease
that runs out puts the card back in the queue. Decisions write the audit log, a training example
when the model was wrong, and the scan owner's inventory entry, all in the caller's transaction.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from db import audit
from db.inventory import Condition, save_scan_card
from db.pool import Conn, one
from db.scans import Decision


class ReviewStatus(StrEnum):
    CONFIRMED = "confirmed"
    CORRECTED = "corrected"
    REJECTED = "rejected"


class TrainingKind(StrEnum):
    CORRECTION = "correction"  # the annotator named a card the model did not propose
    NON_TOP_CONFIRMATION = "non_top_confirmation"  # a proposed card, but not the first
    REJECTION = "rejection"  # not a card, or unreadable


class ReviewConflict(Exception):
    """The card is decided already, or leased to another annotator."""


class ReviewNotFound(Exception):
    """No such scan card, or no such catalog card."""


@dataclass(frozen=True)
class Candidate:
    card_key: str
    card_id: Any
    name: str
    set_code: str
    set_name: str
    card_number: str | None
    image_key: str | None
    score: float | None


@dataclass(frozen=True)
class ReviewCard:
    id: Any
    scan_id: Any
    owner_id: Any
    card_index: int
    crop_key: str | None
    confidence: float | None
    decision: str
    review_status: str | None
    predicted_card_id: Any
    lease_owner: Any
    lease_expires_at: datetime | None
    candidates: list[Candidate] = field(default_factory=list)
    gates: list[str] = field(default_factory=list)  # why the matcher held it back (evidence)

    @property
    def top(self) -> Candidate | None:
        return self.candidates[0] if self.candidates else None


SCAN_CARD_COLUMNS = """
    sc.id, sc.scan_id, s.user_id AS owner_id, sc.card_index, sc.crop_image_url AS crop_key,
    sc.confidence, sc.decision, sc.review_status, sc.card_id AS predicted_card_id,
    sc.lease_owner, sc.lease_expires_at, sc.candidates, sc.evidence->'gates' AS gates
"""
NOW = "(now() AT TIME ZONE 'UTC')"


def _candidate_key(raw: dict) -> str | None:
    return raw.get("card_key") or raw.get("key")


def _candidate_score(raw: dict) -> float | None:
    for name in ("score", "confidence", "similarity"):
        if isinstance(raw.get(name), int | float):
            return float(raw[name])
    return None


def _with_candidates(conn: Conn, row: dict) -> ReviewCard:
    """Stored candidates (a JSON list of {card_key, score, …}) as catalog cards, in order."""
    raw = [c for c in (row.pop("candidates") or []) if isinstance(c, dict) and _candidate_key(c)]
    keys = [_candidate_key(c) for c in raw]
    if not keys and row["predicted_card_id"] is not None:
        cur = conn.execute(
            "SELECT card_key FROM cards WHERE id = %(id)s", {"id": row["predicted_card_id"]}
        )
        found = one(cur)
        keys, raw = [found["card_key"]], [{"card_key": found["card_key"]}]
    catalog = {
        r["card_key"]: r
        for r in conn.execute(
            """
            SELECT c.id AS card_id, c.card_key, c.name, s.code AS set_code, s.name AS set_name,
                   c.card_number, c.image_key
            FROM cards c JOIN sets s ON s.id = c.set_id WHERE c.card_key = ANY(%(keys)s)
            """,
            {"keys": keys},
        ).fetchall()
    }
    candidates, seen = [], set()
    for c in raw:
        key = _candidate_key(c)
        if key in catalog and key not in seen:
            seen.add(key)
            candidates.append(Candidate(**catalog[key], score=_candidate_score(c)))
    gates = row.pop("gates")
    gates = [g for g in gates if isinstance(g, str)] if isinstance(gates, list) else []
    return ReviewCard(**row, candidates=candidates, gates=gates)


def get_scan_card(conn: Conn, *, scan_card_id: Any, lock: bool = False) -> ReviewCard | None:
    """One scan card with its owner and catalog candidates; `lock` takes its row lock."""
    row = conn.execute(
        f"SELECT {SCAN_CARD_COLUMNS} FROM scan_cards sc JOIN scans s ON s.id = sc.scan_id "
        f"WHERE sc.id = %(id)s {'FOR UPDATE OF sc' if lock else ''}",
        {"id": scan_card_id},
    ).fetchone()
    return _with_candidates(conn, row) if row else None


def lease_next(
    conn: Conn, *, annotator_id: Any, lease_s: float = 300, skip_window_s: float = 600
) -> ReviewCard | None:
    """Lease the lowest-confidence undecided `needs_review` card to this annotator.

    A card this annotator already holds comes back first, its lease renewed (a reloaded page);
    cards they skipped within `skip_window_s` are passed over, so S moves on.
    """
    params = {"annotator": annotator_id, "lease_s": lease_s, "skip_window": skip_window_s}
    lease = f"""
        UPDATE scan_cards sc
        SET lease_owner = %(annotator)s,
            lease_expires_at = {NOW} + make_interval(secs => %(lease_s)s)
        FROM next WHERE sc.id = next.id
        RETURNING sc.id
    """
    row = conn.execute(
        f"""
        WITH next AS (
            SELECT id FROM scan_cards
            WHERE lease_owner = %(annotator)s AND lease_expires_at > {NOW}
              AND decision = 'needs_review' AND review_status IS NULL
            LIMIT 1 FOR UPDATE SKIP LOCKED
        ) {lease}
        """,
        params,
    ).fetchone()
    if row is None:
        # Ordered like the partial index idx_scan_cards_review_queue (confidence, NULLS LAST),
        # so the scan stops at the first free card instead of sorting the whole queue.
        row = conn.execute(
            f"""
            WITH next AS (
                SELECT sc.id FROM scan_cards sc JOIN scans s ON s.id = sc.scan_id
                WHERE sc.decision = 'needs_review' AND sc.review_status IS NULL
                  AND s.deleted_at IS NULL
                  AND (sc.lease_expires_at IS NULL OR sc.lease_expires_at <= {NOW})
                  AND NOT EXISTS (
                      SELECT 1 FROM audit_log a
                      WHERE a.entity_type = 'scan_card' AND a.entity_id = sc.id::text
                        AND a.action = 'scan_card.skip' AND a.actor_user_id = %(annotator)s
                        AND a.created_at > {NOW} - make_interval(secs => %(skip_window)s))
                ORDER BY sc.confidence ASC NULLS LAST, sc.created_at, sc.id
                LIMIT 1
                FOR UPDATE OF sc SKIP LOCKED
            ) {lease}
            """,
            params,
        ).fetchone()
    if row is None:
        return None
    return get_scan_card(conn, scan_card_id=row["id"])


def queue_size(conn: Conn) -> int:
    """Undecided `needs_review` cards, leased or not."""
    cur = conn.execute(
        "SELECT count(*) AS n FROM scan_cards "
        "WHERE decision = 'needs_review' AND review_status IS NULL"
    )
    row = one(cur)
    return row["n"]


def _claim(conn: Conn, *, scan_card_id: Any, annotator_id: Any) -> ReviewCard:
    """Lock the card for a decision; it must be undecided and not leased to someone else."""
    card = get_scan_card(conn, scan_card_id=scan_card_id, lock=True)
    if card is None:
        raise ReviewNotFound(f"scan card {scan_card_id} not found")
    if card.decision != Decision.NEEDS_REVIEW or card.review_status is not None:
        raise ReviewConflict(f"scan card {scan_card_id} is not waiting for review")
    cur = conn.execute(
        f"SELECT %(expires)s::timestamp > {NOW} AS live", {"expires": card.lease_expires_at}
    )
    live = one(cur)["live"]
    if live and card.lease_owner is not None and str(card.lease_owner) != str(annotator_id):
        raise ReviewConflict(f"scan card {scan_card_id} is leased to another annotator")
    return card


def release(conn: Conn, *, scan_card_id: Any, annotator_id: Any) -> bool:
    """Skip: give the lease back and remember the skip (the queue passes it over for a while)."""
    card = _claim(conn, scan_card_id=scan_card_id, annotator_id=annotator_id)
    conn.execute(
        "UPDATE scan_cards SET lease_owner = NULL, lease_expires_at = NULL WHERE id = %(id)s",
        {"id": card.id},
    )
    audit.record(
        conn,
        actor_user_id=annotator_id,
        action="scan_card.skip",
        entity_type="scan_card",
        entity_id=card.id,
    )
    return True


def add_training_example(
    conn: Conn,
    *,
    scan_card_id: Any,
    card_id: Any,
    predicted_card_id: Any,
    crop_key: str,
    kind: TrainingKind,
    annotator_id: Any,
) -> Any:
    """One example per scan card; a later decision on the same card replaces it."""
    cur = conn.execute(
        """
        INSERT INTO training_examples (scan_card_id, card_id, predicted_card_id, crop_key, kind,
                                       annotator_id)
        VALUES (%(sc)s, %(card)s, %(pred)s, %(crop)s, %(kind)s, %(annotator)s)
        ON CONFLICT (scan_card_id) DO UPDATE SET card_id = EXCLUDED.card_id,
            predicted_card_id = EXCLUDED.predicted_card_id, crop_key = EXCLUDED.crop_key,
            kind = EXCLUDED.kind, annotator_id = EXCLUDED.annotator_id
        RETURNING id
        """,
        {
            "sc": scan_card_id,
            "card": card_id,
            "pred": predicted_card_id,
            "crop": crop_key,
            "kind": str(kind),
            "annotator": annotator_id,
        },
    )
    row = one(cur)
    return row["id"]


@dataclass(frozen=True)
class ReviewOutcome:
    scan_card_id: Any
    status: ReviewStatus
    card_key: str | None
    training_kind: TrainingKind | None
    inventory_entry_id: Any


def confirm(
    conn: Conn,
    *,
    scan_card_id: Any,
    annotator_id: Any,
    card_key: str | None,
    condition: Condition,
    quantity: int,
) -> ReviewOutcome:
    """Confirm the top candidate (no `card_key`) or settle on any catalog card.

    Anything but the top candidate is a correction and becomes a training example; the card goes
    into the scan owner's inventory either way.
    """
    card = _claim(conn, scan_card_id=scan_card_id, annotator_id=annotator_id)
    top = card.top
    chosen_key = card_key or (top.card_key if top else None)
    if chosen_key is None:
        raise ReviewConflict("no candidate to confirm: name a card_key")
    chosen = conn.execute(
        "SELECT c.id, c.set_id, c.name FROM cards c "
        "WHERE c.card_key = %(key)s AND c.deleted_at IS NULL",
        {"key": chosen_key},
    ).fetchone()
    if chosen is None:
        raise ReviewNotFound(f"card {chosen_key!r} is not in the catalog")
    proposed = [c.card_key for c in card.candidates]
    if top is not None and chosen_key == top.card_key:
        status, kind = ReviewStatus.CONFIRMED, None
    elif chosen_key in proposed:
        status, kind = ReviewStatus.CORRECTED, TrainingKind.NON_TOP_CONFIRMATION
    else:
        status, kind = ReviewStatus.CORRECTED, TrainingKind.CORRECTION
    conn.execute(
        f"""
        UPDATE scan_cards SET review_status = %(status)s, reviewed_by = %(annotator)s,
            reviewed_at = {NOW}, confirmed_card_id = %(card_id)s, confirmed_set_id = %(set_id)s,
            confirmed_name = %(name)s, confirmed_condition = %(condition)s,
            confirmed_quantity = %(quantity)s, lease_owner = NULL, lease_expires_at = NULL
        WHERE id = %(id)s
        """,
        {
            "status": str(status),
            "annotator": annotator_id,
            "card_id": chosen["id"],
            "set_id": chosen["set_id"],
            "name": chosen["name"],
            "condition": str(condition),
            "quantity": quantity,
            "id": card.id,
        },
    )
    if kind is not None and card.crop_key:
        add_training_example(
            conn,
            scan_card_id=card.id,
            card_id=chosen["id"],
            predicted_card_id=top.card_id if top else card.predicted_card_id,
            crop_key=card.crop_key,
            kind=kind,
            annotator_id=annotator_id,
        )
    entry_id, _ = save_scan_card(
        conn,
        user_id=card.owner_id,
        scan_card_id=card.id,
        card_id=chosen["id"],
        condition=condition,
        quantity=quantity,
        scan_confidence=card.confidence,
        scan_image_url=card.crop_key,
    )
    audit.record(
        conn,
        actor_user_id=annotator_id,
        action="scan_card.confirm" if status == ReviewStatus.CONFIRMED else "scan_card.correct",
        entity_type="scan_card",
        entity_id=card.id,
        before={
            "card_key": top.card_key if top else None,
            "confidence": card.confidence,
            "candidates": proposed,
        },
        after={
            "card_key": chosen_key,
            "review_status": str(status),
            "condition": str(condition),
            "quantity": quantity,
            "training_kind": kind and str(kind),
            "inventory_entry_id": entry_id,
        },
    )
    return ReviewOutcome(card.id, status, chosen_key, kind, entry_id)


def reject(conn: Conn, *, scan_card_id: Any, annotator_id: Any, reason: str) -> ReviewOutcome:
    """Not a card, or unreadable: no inventory entry; the crop is kept as a negative example."""
    card = _claim(conn, scan_card_id=scan_card_id, annotator_id=annotator_id)
    conn.execute(
        f"""
        UPDATE scan_cards SET review_status = 'rejected', reviewed_by = %(annotator)s,
            reviewed_at = {NOW}, lease_owner = NULL, lease_expires_at = NULL
        WHERE id = %(id)s
        """,
        {"annotator": annotator_id, "id": card.id},
    )
    if card.crop_key:
        add_training_example(
            conn,
            scan_card_id=card.id,
            card_id=None,
            predicted_card_id=card.top.card_id if card.top else card.predicted_card_id,
            crop_key=card.crop_key,
            kind=TrainingKind.REJECTION,
            annotator_id=annotator_id,
        )
    audit.record(
        conn,
        actor_user_id=annotator_id,
        action="scan_card.reject",
        entity_type="scan_card",
        entity_id=card.id,
        before={"card_key": card.top.card_key if card.top else None, "confidence": card.confidence},
        after={"review_status": "rejected", "reason": reason},
    )
    return ReviewOutcome(card.id, ReviewStatus.REJECTED, None, TrainingKind.REJECTION, None)
