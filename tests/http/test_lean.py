"""The lean path for POST /tag, /embed (and TEI's / and /invocations) answers exactly as the
documented FastAPI routes do, on the real app and model."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager
from fastapi import FastAPI
from fastapi.testclient import TestClient

from app.config import Settings
from app.http.lean import LeanPath
from app.main import create_app

pytestmark = pytest.mark.anyio
REQUESTS = [
    ("/tag", {"inputs": "Alice moved to Paris in 2019."}),
    ("/tag", {"inputs": ["Hello.", "", "Apple hired John Smith in New York."]}),
    ("/tag", {"tokens": [["Alice", "lives", "in", "Berlin"]]}),
    ("/embed", {"inputs": "Alice moved to Paris."}),
    ("/embed", {"inputs": ["one", "two sentences"], "normalize": False}),
    ("/", {"inputs": "TEI's path"}),
    ("/invocations", {"inputs": ["TEI's other path"]}),
    # errors: validation, domain, limits
    ("/tag", {"inputs": "a", "tokens": [["a"]]}),
    ("/tag", {"tokens": [["New York"]]}),
    ("/embed", {"inputs": ""}),
    ("/embed", {"inputs": "a", "normalize": "yes"}),
    ("/embed", {"inputs": "word " * 600}),
    ("/tag", {"inputs": ["a"] * 300}),
    ("/tag", {}),
]


def lean_and_documented(settings: Settings) -> tuple[Any, FastAPI]:
    """The whole app, and the FastAPI app behind its lean path."""
    app = create_app(settings)
    inner: Any = app
    while not isinstance(inner, LeanPath):
        inner = inner.app
    return app, inner.app


async def test_the_lean_path_answers_as_the_documented_route(model_dir) -> None:
    app, documented = lean_and_documented(Settings(model_dir=model_dir))
    headers = {"content-type": "application/json"}
    async with LifespanManager(app, startup_timeout=120) as manager:  # one engine for both
        lean = httpx.AsyncClient(transport=httpx.ASGITransport(manager.app), base_url="http://t")
        slow = httpx.AsyncClient(transport=httpx.ASGITransport(documented), base_url="http://t")
        async with lean, slow:
            for route, body in REQUESTS:
                content = json.dumps(body).encode()
                fast = await lean.post(route, content=content, headers=headers)
                doc = await slow.post(route, content=content, headers=headers)
                assert (fast.status_code, fast.content) == (doc.status_code, doc.content), route
                assert fast.headers["content-type"] == doc.headers["content-type"]


def test_a_body_not_sent_as_json_goes_to_the_documented_route(model_dir) -> None:
    with TestClient(create_app(Settings(model_dir=model_dir))) as lean:
        r = lean.post("/tag", content=b'{"inputs": "a"}', headers={"content-type": "text/plain"})
        as_text = lean.post(
            "/tag", content=b'{"inputs": "a"}', headers={"content-type": "text/json"}
        )
    assert r.status_code == 422 and "Content-Type: application/json" in r.json()["error"]
    assert as_text.status_code == 422  # only application/json and +json types are JSON here


def test_the_api_key_guards_the_lean_path(model_dir) -> None:
    app = create_app(Settings(model_dir=model_dir, api_key="s3cret"))
    with TestClient(app) as c:
        body = {"inputs": "Alice."}
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "Basic s3cret"}):
            r = c.post("/embed", json=body, headers=headers)
            assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer"
            assert r.json()["error_type"] == "unauthorized"
        assert c.post("/embed", json=body, headers={"Authorization": "Bearer s3cret"}).is_success


def test_not_ready_before_the_model_is_loaded(model_dir) -> None:
    c = TestClient(create_app(Settings(model_dir=model_dir)))  # no `with`: lifespan not run
    r = c.post("/tag", json={"inputs": "Alice."})
    assert r.status_code == 503 and r.json()["error_type"] == "not_ready"


async def test_both_paths_read_the_first_authorization_header(model_dir) -> None:
    app, documented = lean_and_documented(Settings(model_dir=model_dir, api_key="s3cret"))
    first_right = [("authorization", "Bearer s3cret"), ("authorization", "Bearer wrong")]
    first_wrong = list(reversed(first_right))
    async with LifespanManager(app, startup_timeout=120) as manager:
        for inner in (manager.app, documented):
            transport = httpx.ASGITransport(inner)
            async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
                right = await client.post("/tag", json={"inputs": "a"}, headers=first_right)
                wrong = await client.post("/tag", json={"inputs": "a"}, headers=first_wrong)
            assert (right.status_code, wrong.status_code) == (200, 401)
