"""SQL for users, their bearer tokens (stored as SHA-256) and their roles."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from db.pool import Conn, one


class Role(StrEnum):
    USER = "user"
    ANNOTATOR = "annotator"
    ADMIN = "admin"


# A role grants every role below it: an admin may annotate, an annotator is a user.
ROLE_RANK = {Role.USER: 0, Role.ANNOTATOR: 1, Role.ADMIN: 2}


@dataclass(frozen=True)
class UserRow:
    id: Any
    username: str
    role: Role

    def has_role(self, role: Role | str) -> bool:
        return ROLE_RANK[self.role] >= ROLE_RANK[Role(role)]


def hash_token(token: str) -> str:
    """The stored form of a bearer token: hex SHA-256."""
    return hashlib.sha256(token.encode()).hexdigest()


def create_user(conn: Conn, *, username: str, role: Role = Role.USER) -> UserRow:
    """A new user with `role` (annotator and admin are rows in admin_users)."""
    cur = conn.execute(
        "INSERT INTO users (username) VALUES (%(username)s) RETURNING id",
        {"username": username},
    )
    row = one(cur)
    if role != Role.USER:
        conn.execute(
            "INSERT INTO admin_users (user_id, role) VALUES (%(user_id)s, %(role)s)",
            {"user_id": row["id"], "role": str(role)},
        )
    return UserRow(id=row["id"], username=username, role=role)


def get_user_by_name(conn: Conn, *, username: str) -> UserRow | None:
    row = conn.execute(
        f"SELECT u.id, u.username, {_ROLE_SQL} AS role FROM users u "
        "WHERE u.username = %(username)s AND u.deleted_at IS NULL",
        {"username": username},
    ).fetchone()
    return UserRow(id=row["id"], username=row["username"], role=Role(row["role"])) if row else None


def issue_token(conn: Conn, *, user_id: Any, name: str | None = None) -> str:
    """Create a bearer token for the user; only its hash is stored, so return it once."""
    token = secrets.token_urlsafe(32)
    conn.execute(
        "INSERT INTO api_tokens (user_id, token_hash, name) "
        "VALUES (%(user_id)s, %(hash)s, %(name)s)",
        {"user_id": user_id, "hash": hash_token(token), "name": name},
    )
    return token


_ROLE_SQL = """
    COALESCE((SELECT CASE WHEN bool_or(a.role = 'admin') THEN 'admin'
                          WHEN count(*) > 0 THEN 'annotator' END
              FROM admin_users a WHERE a.user_id = u.id), 'user')
"""


def user_for_token(conn: Conn, *, token: str) -> UserRow | None:
    """The live user holding this unrevoked token, with their highest role; the token's
    last use is recorded in the same statement, at most once a minute."""
    row = conn.execute(
        f"""
        WITH token AS (
            SELECT id, user_id, last_used_at FROM api_tokens
            WHERE token_hash = %(hash)s AND revoked_at IS NULL
        ), touched AS (
            UPDATE api_tokens SET last_used_at = now() AT TIME ZONE 'UTC'
            WHERE id = (SELECT id FROM token)
              AND (last_used_at IS NULL
                   OR last_used_at < (now() AT TIME ZONE 'UTC') - interval '1 minute')
        )
        SELECT u.id, u.username, {_ROLE_SQL} AS role
        FROM token t JOIN users u ON u.id = t.user_id
        WHERE u.deleted_at IS NULL
        """,
        {"hash": hash_token(token)},
    ).fetchone()
    if row is None:
        return None
    return UserRow(id=row["id"], username=row["username"], role=Role(row["role"]))


def revoke_token(conn: Conn, *, token: str) -> bool:
    cur = conn.execute(
        "UPDATE api_tokens SET revoked_at = now() AT TIME ZONE 'UTC' "
        "WHERE token_hash = %(hash)s AND revoked_at IS NULL",
        {"hash": hash_token(token)},
    )
    return cur.rowcount > 0
