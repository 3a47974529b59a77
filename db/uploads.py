"""SQL for uploads: content-addressed originals, one row per (user, SHA-256)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from db.pool import Conn, one


@dataclass(frozen=True)
class UploadRow:
    id: Any
    user_id: Any
    sha256: str
    size_bytes: int
    media_type: str
    width: int | None
    height: int | None
    storage_key: str
    original_filename: str | None
    created_at: datetime


_COLUMNS = """id, user_id, sha256, size_bytes, media_type, width, height, storage_key,
    original_filename, created_at"""


def insert_upload(
    conn: Conn,
    *,
    user_id: Any,
    sha256: str,
    size_bytes: int,
    media_type: str,
    width: int | None,
    height: int | None,
    storage_key: str,
    original_filename: str | None,
) -> tuple[UploadRow, bool]:
    """The user's upload of these bytes, and whether this call created it."""
    params = {
        "user_id": user_id,
        "sha256": sha256,
        "size_bytes": size_bytes,
        "media_type": media_type,
        "width": width,
        "height": height,
        "storage_key": storage_key,
        "original_filename": original_filename,
    }
    row = conn.execute(
        f"""
        INSERT INTO uploads (user_id, sha256, size_bytes, media_type, width, height,
                             storage_key, original_filename)
        VALUES (%(user_id)s, %(sha256)s, %(size_bytes)s, %(media_type)s, %(width)s, %(height)s,
                %(storage_key)s, %(original_filename)s)
        ON CONFLICT (user_id, sha256) DO NOTHING
        RETURNING {_COLUMNS}
        """,
        params,
    ).fetchone()
    if row is not None:
        return UploadRow(**row), True
    existing = get_upload_by_sha(conn, user_id=user_id, sha256=sha256)
    assert existing is not None  # the conflicting row is committed once ON CONFLICT returns
    return existing, False


def get_upload_by_sha(conn: Conn, *, user_id: Any, sha256: str) -> UploadRow | None:
    row = conn.execute(
        f"SELECT {_COLUMNS} FROM uploads WHERE user_id = %(user_id)s AND sha256 = %(sha256)s",
        {"user_id": user_id, "sha256": sha256},
    ).fetchone()
    return UploadRow(**row) if row else None


def get_upload(conn: Conn, *, upload_id: Any) -> UploadRow | None:
    row = conn.execute(
        f"SELECT {_COLUMNS} FROM uploads WHERE id = %(id)s", {"id": upload_id}
    ).fetchone()
    return UploadRow(**row) if row else None


def count_uploads(conn: Conn) -> int:
    return one(conn.execute("SELECT count(*) AS n FROM uploads"))["n"]
