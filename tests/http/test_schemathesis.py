"""The API against its own OpenAPI schema: schemathesis generates valid and invalid requests for
every operation in /openapi.json and checks that none gets a 5xx and that every response (status,
content type, headers, body) is one the schema declares. Bounded: 30 examples per operation."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.python.asgi import shutdown_lifespans
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from app.config import Settings
from app.main import create_app
from tests.helpers import find_model_dir

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]


MODEL_DIR = find_model_dir()
if not (MODEL_DIR / "model.onnx").is_file():
    pytest.skip(f"no model at {MODEL_DIR}", allow_module_level=True)
APP = create_app(Settings(model_dir=MODEL_DIR))
# The schema as served, read without starting the app: the model loads when the first case runs
# (schemathesis starts the lifespan once, on its own event loop), not while tests are collected.
# (schemathesis.pytest.from_fixture would defer it too, but it breaks on pytest 9's node ids.)
schema = schemathesis.openapi.from_dict(TestClient(APP).get("/openapi.json").json())
schema.app = APP  # what openapi.from_asgi sets: cases are sent to the app in-process


@pytest.fixture(scope="module", autouse=True)
def _stop_the_app() -> Iterator[None]:
    yield
    shutdown_lifespans()


@pytest.mark.slow  # seconds: kept out of make test-fast
@schema.parametrize()
@settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck))
def test_api_conforms_to_its_schema(case: Any) -> None:
    case.call_and_validate(checks=CHECKS)
