"""SQL for the audit log: who confirmed, corrected, rejected or changed what."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from psycopg.types.json import Jsonb

from db.pool import Conn, one


@dataclass(frozen=True)
class AuditEntry:
    id: int
    actor_user_id: Any
    action: str
    entity_type: str
    entity_id: str
    before: dict | None
    after: dict | None
    created_at: datetime


def _json(value: dict | None) -> Jsonb | None:
    # default=str: UUIDs, Decimals and datetimes end up as their text form.
    return None if value is None else Jsonb(json.loads(json.dumps(value, default=str)))


def record(
    conn: Conn,
    *,
    actor_user_id: Any,
    action: str,
    entity_type: str,
    entity_id: Any,
    before: dict | None = None,
    after: dict | None = None,
) -> int:
    """Append one audit row; returns its id."""
    cur = conn.execute(
        """
        INSERT INTO audit_log (actor_user_id, action, entity_type, entity_id, before, after)
        VALUES (%(actor)s, %(action)s, %(entity_type)s, %(entity_id)s, %(before)s, %(after)s)
        RETURNING id
        """,
        {
            "actor": actor_user_id,
            "action": action,
            "entity_type": entity_type,
            "entity_id": str(entity_id),
            "before": _json(before),
            "after": _json(after),
        },
    )
    row = one(cur)
    return row["id"]


def entries_for(conn: Conn, *, entity_type: str, entity_id: Any) -> list[AuditEntry]:
    """Every audit row of one entity, oldest first."""
    rows = conn.execute(
        """
        SELECT id, actor_user_id, action, entity_type, entity_id, before, after, created_at
        FROM audit_log WHERE entity_type = %(t)s AND entity_id = %(id)s ORDER BY id
        """,
        {"t": entity_type, "id": str(entity_id)},
    ).fetchall()
    return [AuditEntry(**r) for r in rows]
