"""OpenAI's error shape under /v1/ (app/http/openai.py), ours elsewhere, through the real app.
Every /v1/ error row of tests/http/test_bad_input.py checks the shape too (`error_of`)."""

from __future__ import annotations

import json
from collections.abc import Callable

from fastapi.testclient import TestClient

from app.config import Settings
from app.main import create_app
from tests.helpers import error_of


def test_errors_take_the_shape_of_their_route(make_settings: Callable[..., Settings]) -> None:
    client = TestClient(create_app(make_settings()))  # no lifespan: the model is not loaded
    v1 = client.post("/v1/embeddings", json={"input": "hi"})
    assert v1.status_code == 503
    assert error_of(v1) == ("the model is not loaded yet", "not_ready")
    assert v1.json()["error"]["type"] == "server_error"
    assert int(v1.headers["content-length"]) == len(v1.content)
    ours = client.post("/embed", json={"inputs": "hi"})
    assert ours.json() == {"error": "the model is not loaded yet", "error_type": "not_ready"}


def test_body_limit_and_unknown_paths_under_v1(make_settings: Callable[..., Settings]) -> None:
    client = TestClient(create_app(make_settings(max_body_bytes=10)))
    big = client.post("/v1/embeddings", content=json.dumps({"input": "x" * 20}))
    assert big.status_code == 413 and error_of(big)[1] == "too_large"
    missing = client.get("/v1/completions")
    assert missing.status_code == 404 and error_of(missing)[1] == "not_found"
