"""The native handlers (app/http/handlers/native.py) through the real app and model: which
heads /tag answers in each format. The whole contract: tests/http/test_api.py and
tests/http/test_formats.py."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from tests.helpers import error_of

TEXT = "Alice moved to Paris last year."


@pytest.mark.parametrize("fmt", ["conllu", "spacy"])
@pytest.mark.parametrize("given", [{"inputs": TEXT}, {"tokens": [TEXT[:-1].split()]}])
def test_conllu_and_spacy_answer_every_head_yet_refuse_unknown_ones(
    client: TestClient, fmt: str, given: dict
) -> None:
    every = client.post("/tag", json={**given, "format": fmt})
    named = client.post("/tag", json={**given, "format": fmt, "heads": ["ner"]})
    assert every.status_code == named.status_code == 200
    assert named.content == every.content
    unknown = client.post("/tag", json={**given, "format": fmt, "heads": ["ner", "dep"]})
    assert unknown.status_code == 422
    said, error_type = error_of(unknown)
    assert said.startswith("unknown heads ['dep']; this model's heads are ['upos'")
    assert error_type == "invalid_input"


def test_json_answers_the_heads_asked_for(client: TestClient) -> None:
    [tagged] = client.post("/tag", json={"tokens": [["Alice"]], "heads": ["upos"]}).json()
    assert tagged["tokens"][0].keys() == {"text", "start", "end", "upos", "upos_score"}
    r = client.post("/tag", json={"tokens": [["Alice"]], "heads": ["dep"]})
    assert r.status_code == 422 and error_of(r)[1] == "invalid_input"


def test_no_heads_answers_tokens_and_sentences_without_running_the_tagger(
    client: TestClient,
) -> None:
    text = "Alice moved to Paris. She likes it there.\n\nBob stayed."
    model = client.get("/info").json()["model"]["name"]

    def tag_runs() -> float:
        lines = client.get("/metrics").text.splitlines()
        prefix = f'bigru_ort_runs_total{{model="{model}",task="tag"}} '
        return sum(float(line.split()[-1]) for line in lines if line.startswith(prefix))

    before = tag_runs()
    [split] = client.post("/tag", json={"inputs": text, "heads": []}).json()
    assert tag_runs() == before  # the segmenter ran, the tagger did not
    [tagged] = client.post("/tag", json={"inputs": text}).json()
    assert tag_runs() > before
    assert split["sentences"] == tagged["sentences"] and len(split["sentences"]) == 3
    assert split["tokens"] == [
        {k: t[k] for k in ("text", "start", "end")} for t in tagged["tokens"]
    ]
    assert split["entities"] == []
    [words] = client.post("/tag", json={"tokens": [["Hi", "there"]], "heads": []}).json()
    assert words["tokens"] == [
        {"text": "Hi", "start": None, "end": None},
        {"text": "there", "start": None, "end": None},
    ]
