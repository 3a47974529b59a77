"""schemathesis against the OpenAPI document of the scan and health routes: no 500, and every
answer has a documented status, content type and schema. A few examples per operation."""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from api.main import create_app

app = create_app()
schema = schemathesis.openapi.from_asgi("/openapi.json", app).include(
    path_regex=r"^/(v1/scans|healthz|readyz)"
)
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


@pytest.fixture
def token(client, make_user) -> dict[str, str]:
    return make_user("fuzz")


@schema.parametrize()
@settings(max_examples=6, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
def test_api_conforms_and_never_500s(case, token):
    case.call_and_validate(headers=token, checks=CHECKS)
