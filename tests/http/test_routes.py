"""The route table is the one list of routes: the FastAPI app declares exactly its routes, the
OpenAPI document lists its documented ones, the dispatcher answers its POST ones, and the edge
labels its metrics by its paths."""

from __future__ import annotations

import inspect

from fastapi.routing import APIRoute
from fastapi.testclient import TestClient

from app.config import Settings
from app.http.api import documented_app
from app.http.routes import ROUTES
from app.main import create_app
from app.metrics import Metrics


def test_the_fastapi_app_serves_the_table_and_nothing_else() -> None:
    app = documented_app(Settings(), Metrics(), lifespan=None)  # type: ignore[arg-type]
    served = {(r.path, m) for r in app.routes if isinstance(r, APIRoute) for m in r.methods}
    assert served == {(r.path, r.method) for r in ROUTES}
    documented = {
        (path, method.upper())
        for path, operations in app.openapi()["paths"].items()
        for method in operations
    }
    assert documented == {(r.path, r.method) for r in ROUTES if r.documented}


def test_post_routes_handlers_take_a_body_the_document_declares() -> None:
    app = documented_app(Settings(), Metrics(), lifespan=None)  # type: ignore[arg-type]
    paths = app.openapi()["paths"]
    for route in ROUTES:
        if route.method == "POST":
            parameters = inspect.signature(route.handler).parameters
            assert list(parameters) == ["body", "engine", "receive"]
            body = paths[route.path]["post"]["requestBody"]["content"]["application/json"]
            assert body["schema"] == {"$ref": f"#/components/schemas/{route.body.__name__}"}


def test_the_edge_labels_each_path_of_the_table() -> None:
    app = create_app(Settings())  # no lifespan: every route answers 503 or 401, still counted
    client = TestClient(app)
    for route in ROUTES:
        client.request(route.method, route.path)
    client.get("/not/a/route")
    sample = app.state.metrics.registry.get_sample_value
    labels = {route.path for route in ROUTES} | {"other"}
    counted = {
        label
        for label in labels
        if sample("bigru_request_seconds_count", {"route": label, "model": ""})
    }
    assert counted == labels
