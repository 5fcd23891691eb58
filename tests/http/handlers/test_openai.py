"""OpenAI's embeddings handler (app/http/handlers/openai.py) through the real app and model:
its answer is the body the OpenAPI document describes, in /embed's floats; `dimensions` cut
the vectors. The
SDK's view: tests/http/test_clients.py."""

from __future__ import annotations

import numpy as np
import pytest
from fastapi.testclient import TestClient

from app.http.openai import EmbeddingsResponse
from tests.helpers import error_of

TEXTS = ["Alice moved to Paris.", "Bob stayed."]


def test_the_answer_is_the_documented_body_with_embeds_floats(client: TestClient) -> None:
    model = client.get("/info").json()["model"]["name"]
    r = client.post("/v1/embeddings", json={"input": TEXTS, "model": model, "user": "u"})
    assert r.status_code == 200 and r.headers["content-type"] == "application/json"
    answer = EmbeddingsResponse.model_validate_json(r.content)
    assert [d.index for d in answer.data] == [0, 1] and answer.usage.prompt_tokens > 0
    assert client.post("/v1/embeddings", json={"input": TEXTS}).content == r.content
    # the fewest digits that read back as the same float32, as /embed writes them
    embed = client.post("/embed", json={"inputs": TEXTS}).content
    rows = embed[2:-2].split(b"],[")  # each vector's digits, as /embed wrote them
    assert len(rows) == 2 and all(b'"embedding":[' + row + b"]" in r.content for row in rows)


def test_dimensions_give_the_first_components_renormalized(client: TestClient) -> None:
    r = client.post("/v1/embeddings", json={"input": TEXTS, "dimensions": 128})
    assert r.status_code == 200
    vectors = np.array([d["embedding"] for d in r.json()["data"]], dtype=np.float32)
    assert vectors.shape == (2, 128)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1, rtol=1e-5)
    embed = client.post("/embed", json={"inputs": TEXTS, "dimensions": 128}).json()
    np.testing.assert_array_equal(vectors, np.array(embed, dtype=np.float32))


@pytest.mark.parametrize("dimensions", [0, 385])
def test_dimensions_outside_the_vector_are_refused(client: TestClient, dimensions: int) -> None:
    r = client.post("/v1/embeddings", json={"input": "a", "dimensions": dimensions})
    assert r.status_code == 422
    message = f"dimensions must be between 1 and 384; got {dimensions}"
    assert error_of(r) == (message, "invalid_input")
