"""Property-based requests generated from the OpenAPI schema: no response may be a 5xx."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from service_testkit import SESSION_TAG

# /readyz returns 503 by design when a dependency is down, and /files needs a signed link.
EXCLUDED_PATHS = {"/readyz", "/files/{key}"}
MAX_EXAMPLES = 25


def operation_labels() -> list[str]:
    """List `METHOD /path` of every operation, from an app built on throwaway embedded settings."""
    from service.app import create_app
    from service.settings import Settings

    with tempfile.TemporaryDirectory() as folder:
        schema = create_app(Settings(data_dir=Path(folder))).openapi()
    return [
        f"{method.upper()} {path}"
        for path, operations in schema["paths"].items()
        for method in operations
        if path not in EXCLUDED_PATHS
    ]


@pytest.fixture(scope="module")
def fuzz_headers(settings):
    from service.auth import create_api_key
    from service.db import session_scope

    with session_scope(settings.resolved_database_url) as session:
        _, key = create_api_key(session, f"fuzz-{SESSION_TAG}")
    return {"Authorization": f"Bearer {key}", "Prefer": "wait=0"}


@pytest.fixture(scope="module")
def fuzz_schema(settings):
    from service.app import create_app

    # Edits and jobs the fuzzer manages to create stay queued: no worker reads this key prefix.
    app = create_app(settings.model_copy(update={"broker_key_prefix": f"rl4pix-test-{SESSION_TAG}:fuzz:"}))
    return schemathesis.openapi.from_asgi("/openapi.json", app)


@pytest.mark.parametrize("label", operation_labels())
def test_no_server_errors(fuzz_schema, fuzz_headers, label):
    operation = fuzz_schema.find_operation_by_label(label)

    @hypothesis_settings(
        max_examples=MAX_EXAMPLES, deadline=None, database=None, suppress_health_check=list(HealthCheck)
    )
    @given(case=operation.as_strategy())
    def check(case):
        response = case.call(headers=fuzz_headers)
        assert response.status_code < 500, (
            f"{case.method} {case.path}: {response.status_code} {response.text[:300]}"
        )

    check()
