"""OpenAI's embeddings handler (app/http/handlers/openai.py) through the real app and model:
its answer is the body the OpenAPI document describes; `dimensions` must be the model's. The
SDK's view: tests/http/test_clients.py."""

from __future__ import annotations

from fastapi.testclient import TestClient

from app.http.openai import EmbeddingsResponse
from tests.helpers import error_of

TEXTS = ["Alice moved to Paris.", "Bob stayed."]


def test_the_answer_is_the_documented_body(client: TestClient) -> None:
    r = client.post("/v1/embeddings", json={"input": TEXTS, "model": "any", "user": "u"})
    assert r.status_code == 200 and r.headers["content-type"] == "application/json"
    answer = EmbeddingsResponse.model_validate_json(r.content)
    assert answer.model_dump_json().encode() == r.content
    assert [d.index for d in answer.data] == [0, 1]
    assert client.post("/v1/embeddings", json={"input": TEXTS}).content == r.content


def test_dimensions_must_be_the_models(client: TestClient) -> None:
    dim = client.get("/info").json()["embedding_dim"]
    assert client.post("/v1/embeddings", json={"input": "a", "dimensions": dim}).status_code == 200
    r = client.post("/v1/embeddings", json={"input": "a", "dimensions": dim + 1})
    assert r.status_code == 422
    assert error_of(r) == (f"dimensions must be {dim} for this model", "invalid_input")
