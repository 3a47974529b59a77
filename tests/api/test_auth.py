"""Bearer tokens: every /v1 route needs one; roles gate what review routes will use."""

from __future__ import annotations

import re
import uuid

import pytest
from fastapi import Depends, FastAPI
from fastapi.testclient import TestClient

# Public on purpose: catalog reference images are public data (api/routes/cards.py).
PUBLIC = {("GET", "/v1/cards/{card_key}/image")}


def _v1_operations() -> list[tuple[str, str, bool]]:
    """Every /v1 operation in the OpenAPI document: (method, path, declares bearer auth)."""
    from api.main import app

    return [
        (method.upper(), path, bool(operation.get("security")))
        for path, operations in app.openapi()["paths"].items()
        if path.startswith("/v1")
        for method, operation in sorted(operations.items())
    ]


def _concrete(path: str) -> str:
    path = path.replace("{scan_id}", str(uuid.uuid4())).replace("{card_index}", "0")
    return re.sub(r"\{[^}]+\}", "x", path)


V1_ROUTES = [(m, _concrete(p)) for m, p, _ in _v1_operations() if (m, p) not in PUBLIC]


def test_there_are_v1_routes():
    assert ("POST", "/v1/scans") in V1_ROUTES and len(V1_ROUTES) >= 5


def test_every_v1_route_declares_bearer_auth_unless_public_on_purpose():
    assert [(m, p) for m, p, secured in _v1_operations() if not secured] == sorted(PUBLIC)


@pytest.mark.parametrize(("method", "path"), V1_ROUTES)
def test_every_v1_route_without_a_token_is_401(client, method, path):
    response = client.request(method, path)
    assert response.status_code == 401, response.text
    assert response.json()["code"] == "unauthorized"
    assert response.headers["www-authenticate"] == "Bearer"
    bad = client.request(method, path, headers={"Authorization": "Bearer not-a-token"})
    assert bad.status_code == 401


def test_revoked_token_is_401(client, clean_db):
    from db import users
    from db.pool import connection

    with connection() as conn, conn.transaction():
        user = users.create_user(conn, username="carol")
        token = users.issue_token(conn, user_id=user.id)
    headers = {"Authorization": f"Bearer {token}"}
    assert client.get("/v1/scans", headers=headers).status_code == 200
    with connection() as conn, conn.transaction():
        assert users.revoke_token(conn, token=token)
    assert client.get("/v1/scans", headers=headers).status_code == 401


def test_tokens_are_stored_hashed(clean_db):
    from db import users
    from db.pool import connection

    with connection() as conn, conn.transaction():
        user = users.create_user(conn, username="dave")
        token = users.issue_token(conn, user_id=user.id)
        stored = conn.execute("SELECT token_hash FROM api_tokens").fetchone()["token_hash"]
    assert token not in stored and stored == users.hash_token(token)


def test_require_role_orders_user_annotator_admin(make_user):
    from api.auth import require_role
    from api.errors import install_error_handlers

    app = FastAPI()
    install_error_handlers(app)

    @app.get("/review")
    def review(user=Depends(require_role("annotator"))):  # noqa: B008
        return {"user": user.username}

    client = TestClient(app)
    assert client.get("/review", headers=make_user("u", "user")).status_code == 403
    assert client.get("/review", headers=make_user("a", "annotator")).json() == {"user": "a"}
    assert client.get("/review", headers=make_user("b", "admin")).status_code == 200
    assert client.get("/review").status_code == 401


def test_cli_creates_a_user_whose_token_is_the_last_line(client, clean_db):
    from typer.testing import CliRunner

    from scripts.cli import app as cli

    result = CliRunner().invoke(cli, ["users", "create", "erin", "--role", "annotator"])
    assert result.exit_code == 0, result.output
    token = result.output.strip().splitlines()[-1]
    assert client.get("/v1/scans", headers={"Authorization": f"Bearer {token}"}).status_code == 200
    again = CliRunner().invoke(cli, ["users", "create", "erin"])
    assert again.exit_code == 1
    bad_role = CliRunner().invoke(cli, ["users", "create", "frank", "--role", "owner"])
    assert bad_role.exit_code != 0
