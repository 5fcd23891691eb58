"""The Hugging Face routes (app/http/huggingface.py) and TEI's request fields on /embed, through the
real app and model. The real clients against a real server: tests/http/test_clients.py."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from app.config import Settings
from app.main import create_app
from tests.helpers import error_of

TEXTS = ["Barack Obama visited Paris last week.", "Apple hired Tim Cook in New York."]
HF = "/pipeline/token-classification"


@pytest.mark.parametrize("path", ["/", "/invocations"])
def test_tei_paths_answer_as_embed(client: TestClient, path: str) -> None:
    for body in ({"inputs": TEXTS}, {"inputs": TEXTS[0], "normalize": False}):
        embed = client.post("/embed", json=body)
        assert embed.status_code == 200
        assert client.post(path, json=body).content == embed.content
    assert client.get("/").headers["content-type"].startswith("text/html")  # still the page


def test_truncate_within_the_limits_changes_nothing(client: TestClient) -> None:
    plain = client.post("/embed", json={"inputs": TEXTS}).content
    for direction in ("Left", "Right"):
        body = {"inputs": TEXTS, "truncate": True, "truncation_direction": direction}
        assert client.post("/embed", json=body).content == plain


@pytest.fixture(scope="module")
def small(model_dir: Path):
    settings = Settings(
        model_dir=model_dir, max_chars_per_input=60, max_tokens_per_input=5, max_pieces_per_input=8
    )
    with TestClient(create_app(settings)) as c:
        yield c


WORDS = "one two three four five six seven"
GAP = " " * 70
# (text, direction, the text whose embedding the truncated one must equal)
CUTS = [
    (WORDS, "Right", "one two three four five"),  # 7 words, at most 5
    (WORDS, "Left", "three four five six seven"),
    ("a." * 6, "Right", "a." * 4),  # one word of 12 pieces, at most 8
    ("a." * 6, "Left", "a." * 4),
    (f"Paris{GAP}London", "Right", "Paris"),  # 81 characters, at most 60
    (f"Paris{GAP}London", "Left", "London"),
]


@pytest.mark.parametrize("text, direction, same_as", CUTS)
def test_truncate_cuts_to_the_limits(
    small: TestClient, text: str, direction: str, same_as: str
) -> None:
    refused = small.post("/embed", json={"inputs": text})
    assert refused.status_code == 413 and error_of(refused)[1] == "too_large"
    body = {"inputs": [text, same_as], "truncate": True, "truncation_direction": direction}
    cut, expected = small.post("/embed", json=body).json()
    assert cut == pytest.approx(expected, abs=1e-6)
    assert cut == pytest.approx(small.post("/embed", json={"inputs": same_as}).json()[0], abs=1e-6)


def test_truncate_leaves_other_limits(small: TestClient) -> None:
    """Truncation fits an input to the model; it does not lift the per-request limits."""
    r = small.post("/embed", json={"inputs": ["a"] * 300, "truncate": True})
    assert r.status_code == 413 and error_of(r)[1] == "too_large"
    r = small.post("/embed", json={"inputs": " ", "truncate": True})
    assert r.status_code == 422 and error_of(r)[1] == "empty_input"


def test_token_classification_is_the_tag_entities(client: TestClient) -> None:
    [tagged] = client.post("/tag", json={"inputs": TEXTS[0]}).json()
    expected = [
        {
            "entity_group": e["label"],
            "score": e["score"],
            "word": e["text"],
            "start": e["start"],
            "end": e["end"],
        }
        for e in tagged["entities"]
    ]
    assert [e["entity_group"] for e in expected] == ["PER", "LOC"]
    for strategy in (None, "simple", "first", "average", "max"):
        parameters = {"aggregation_strategy": strategy} if strategy else {}
        r = client.post(HF, json={"inputs": TEXTS[0], "parameters": parameters})
        assert r.status_code == 200 and r.json() == expected
    no_people = {"inputs": TEXTS[0], "parameters": {"ignore_labels": ["PER"]}}
    assert client.post(HF, json=no_people).json() == expected[1:]
    assert client.post(HF, json={"inputs": " "}).json() == []
