"""schemathesis against the review, inventory and catalog routes: no 500, documented answers."""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import content_type_conformance, status_code_conformance

from api.main import create_app

schema = schemathesis.openapi.from_asgi("/openapi.json", create_app()).include(
    path_regex=r"^/v1/(review|scan-cards|inventory|cards)"
)


@pytest.fixture
def token(client, make_user) -> dict[str, str]:
    return make_user("fuzz-admin", "admin")


@schema.parametrize()
@settings(max_examples=8, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
def test_review_and_inventory_never_500(case, token):
    case.call_and_validate(
        headers=token,
        checks=[not_a_server_error, status_code_conformance, content_type_conformance],
    )
