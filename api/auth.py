"""Bearer-token authentication (tokens stored as SHA-256) and role checks."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

from fastapi import Depends, HTTPException
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from db import users
from db.pool import connection
from db.users import Role, UserRow

bearer = HTTPBearer(auto_error=False, description="A token from `cardscan users create`.")


def _unauthorized() -> HTTPException:
    return HTTPException(
        401, "a valid bearer token is required", headers={"WWW-Authenticate": "Bearer"}
    )


def current_user(
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> UserRow:
    """The user holding the request's bearer token; 401 without a valid one."""
    if credentials is None or not credentials.credentials:
        raise _unauthorized()
    token = credentials.credentials
    with connection() as conn:
        # One statement, its own transaction: no BEGIN/COMMIT round trips on every request.
        conn.autocommit = True
        try:
            user = users.user_for_token(conn, token=token)
        finally:
            conn.autocommit = False
    if user is None:
        raise _unauthorized()
    return user


def require_role(role: Role | str) -> Callable[..., UserRow]:
    """A dependency admitting users with `role` or above (admin > annotator > user); 403 else."""
    needed = Role(role)

    def dependency(user: Annotated[UserRow, Depends(current_user)]) -> UserRow:
        if not user.has_role(needed):
            raise HTTPException(403, f"this needs the {needed} role")
        return user

    return dependency
