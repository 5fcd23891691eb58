"""Hugging Face's token-classification pipeline (app/http/handlers/huggingface.py) through the
real app and model: `aggregation_strategy: none` answers each word as transformers' pipeline
does, a list of texts a list per text. huggingface_hub's real client: tests/http/test_clients.py."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from app.core import runs

HF = "/pipeline/token-classification"
TEXTS = ["Barack Obama visited Paris last week.", "Apple hired Tim Cook in New York."]
NONE = {"aggregation_strategy": "none"}


def words(client: TestClient, text: str) -> list[dict]:
    """What `none` answers for `text`, from /tag's tokens and their span (`ner`) labels."""
    [tagged] = client.post("/tag", json={"inputs": text, "heads": ["ner"]}).json()
    return [
        {
            "entity": t["ner"],
            "score": t["ner_score"],
            "index": i + 1,
            "word": t["text"],
            "start": t["start"],
            "end": t["end"],
        }
        for i, t in enumerate(tagged["tokens"])
    ]


def test_none_answers_each_word_with_its_span_label(client: TestClient) -> None:
    every = words(client, TEXTS[0])
    r = client.post(HF, json={"inputs": TEXTS[0], "parameters": NONE})
    assert r.status_code == 200
    assert r.json() == [w for w in every if w["entity"] != "O"]
    assert [w["entity"] for w in r.json()] == ["B-PER", "I-PER", "B-LOC"]
    nothing_left_out = {**NONE, "ignore_labels": []}
    assert (
        client.post(HF, json={"inputs": TEXTS[0], "parameters": nothing_left_out}).json() == every
    )
    no_people = {**NONE, "ignore_labels": ["O", "B-PER", "I-PER"]}
    r = client.post(HF, json={"inputs": TEXTS[0], "parameters": no_people})
    assert [w["word"] for w in r.json()] == ["Paris"]


@pytest.mark.parametrize("strategy", ["none", "simple"])
def test_a_list_of_texts_is_a_list_per_text(client: TestClient, strategy: str) -> None:
    parameters = {"aggregation_strategy": strategy}
    one_by_one = [
        client.post(HF, json={"inputs": t, "parameters": parameters}).json() for t in TEXTS
    ]
    together = client.post(HF, json={"inputs": [*TEXTS, " "], "parameters": parameters})
    assert together.status_code == 200 and together.json() == [*one_by_one, []]


def test_an_answer_in_many_parts_is_the_same(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A long text is tagged in runs of sentences (app.core.runs): words keep their place."""
    text = " ".join(TEXTS * 3)
    every = {**NONE, "ignore_labels": []}
    whole = [client.post(HF, json={"inputs": text, "parameters": p}).json() for p in ({}, every)]
    assert whole[1] == words(client, text)
    monkeypatch.setattr(runs, "RUN_WORDS", 4)
    parts = [client.post(HF, json={"inputs": text, "parameters": p}).json() for p in ({}, every)]
    assert parts == whole
