"""The dispatcher answers every POST route of the table itself, on the real app and model: the
FastAPI app behind it sees no POST to a route, and answers everything else."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from app.config import Settings
from app.http.dispatcher import Dispatcher
from app.http.routes import ROUTES
from app.main import create_app
from tests.helpers import error_of

POSTS = [route.path for route in ROUTES if route.method == "POST"]
BODIES = {  # the others take a text as `inputs`
    "/v1/embeddings": {"input": "Alice moved."},
    "/similarity": {"inputs": {"source_sentence": "Alice moved.", "sentences": ["Bob too."]}},
}


def body(path: str) -> dict[str, Any]:
    return BODIES.get(path, {"inputs": "Alice moved."})


@pytest.fixture(scope="module")
def seen(model_dir) -> Iterator[tuple[TestClient, list[tuple[str, str]]]]:
    """The real app, and the (method, path) of each request its FastAPI app was handed."""
    app = create_app(Settings(model_dir=model_dir))
    inner: Any = app
    while not isinstance(inner, Dispatcher):
        inner = inner.app
    fastapi_app, reached = inner.app, []

    async def watched(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            reached.append((scope["method"], scope["path"]))
        await fastapi_app(scope, receive, send)

    inner.app = watched
    with TestClient(app) as client:
        yield client, reached


@pytest.mark.parametrize("path", POSTS)
def test_every_post_route_is_answered_by_the_dispatcher(seen: Any, path: str) -> None:
    client, reached = seen
    reached.clear()
    assert client.post(path, json=body(path)).status_code == 200
    assert client.post(path, json={"nope": 1}).status_code == 422
    not_json = client.post(path, content=json.dumps(body(path)), headers={"content-type": "x/y"})
    assert not_json.status_code == 422
    assert reached == []


def test_the_fastapi_app_answers_the_rest(seen: Any) -> None:
    client, reached = seen
    reached.clear()
    assert client.get("/health").status_code == 200
    assert client.get("/tag").status_code == 405  # a POST route, asked with another method
    assert client.post("/health").status_code == 405
    assert client.post("/nope", json={}).status_code == 404
    assert reached == [("GET", "/health"), ("GET", "/tag"), ("POST", "/health"), ("POST", "/nope")]


@pytest.mark.parametrize("path", POSTS)
def test_a_trailing_slash_is_the_same_route(seen: Any, path: str) -> None:
    client, _ = seen
    slashed = client.post(path.rstrip("/") + "/", json=body(path), follow_redirects=False)
    assert slashed.status_code == 200
    assert slashed.content == client.post(path, json=body(path)).content


def test_a_body_not_sent_as_json_is_a_422(seen: Any) -> None:
    client, _ = seen
    r = client.post("/tag", content=b'{"inputs": "a"}', headers={"content-type": "text/plain"})
    as_text = client.post("/tag", content=b'{"inputs": "a"}', headers={"content-type": "text/json"})
    plus_json = client.post(
        "/tag", content=b'{"inputs": "a"}', headers={"content-type": "application/x+json"}
    )
    assert r.status_code == 422 and "Content-Type: application/json" in r.json()["error"]
    assert as_text.status_code == 422  # only application/json and +json types are JSON here
    assert plus_json.status_code == 200


def test_errors_take_the_shape_of_the_route(seen: Any) -> None:
    client, _ = seen
    v1 = client.post("/v1/embeddings/", json={"input": ""})
    assert v1.status_code == 422 and v1.json()["error"]["code"] == "empty_input"
    native = client.post("/embed/", json={"inputs": ""})
    assert native.json() == {
        "error": "input 0 is empty or whitespace only; nothing to embed",
        "error_type": "empty_input",
    }


def test_the_api_key_guards_every_post_route(model_dir) -> None:
    app = create_app(Settings(model_dir=model_dir, api_key="s3cret"))
    wrong = ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "Basic s3cret"})
    with TestClient(app) as c:
        for path in POSTS:
            for headers in wrong:
                r = c.post(path, json=body(path), headers=headers)
                assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer"
                assert error_of(r)[1] == "unauthorized"
            right = c.post(path, json=body(path), headers={"Authorization": "Bearer s3cret"})
            assert right.status_code == 200


def test_the_first_authorization_header_counts(model_dir) -> None:
    first_right = [("authorization", "Bearer s3cret"), ("authorization", "Bearer wrong")]
    first_wrong = list(reversed(first_right))
    with TestClient(create_app(Settings(model_dir=model_dir, api_key="s3cret"))) as c:
        right = c.post("/tag", json={"inputs": "a"}, headers=first_right)
        wrong = c.post("/tag", json={"inputs": "a"}, headers=first_wrong)
    assert (right.status_code, wrong.status_code) == (200, 401)


def test_not_ready_before_the_model_is_loaded(model_dir) -> None:
    c = TestClient(create_app(Settings(model_dir=model_dir)))  # no `with`: lifespan not run
    for path in POSTS:
        r = c.post(path, json=body(path))
        assert r.status_code == 503 and error_of(r)[1] == "not_ready"
