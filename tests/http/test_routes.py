"""The route table is the one list of routes: the FastAPI app serves exactly its routes, the
OpenAPI document lists its documented ones, the lean path answers its lean ones, and the edge
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


def test_lean_routes_are_posts_whose_handler_takes_a_body() -> None:
    for route in ROUTES:
        if route.lean:
            parameters = inspect.signature(route.handler).parameters
            assert route.method == "POST" and list(parameters) == ["body", "engine", "receive"]


def test_the_edge_labels_each_path_of_the_table() -> None:
    app = create_app(Settings())  # no lifespan: every route answers 503 or 401, still counted
    client = TestClient(app)
    for route in ROUTES:
        client.request(route.method, route.path)
    client.get("/not/a/route")
    sample = app.state.metrics.registry.get_sample_value
    labels = {route.path for route in ROUTES} | {"other"}
    counted = {label for label in labels if sample("bigru_request_seconds_count", {"route": label})}
    assert counted == labels
