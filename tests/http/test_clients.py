"""The client libraries people point at the service, against `python -m app` over TCP: the
OpenAI SDK, LangChain's OpenAIEmbeddings and huggingface_hub's InferenceClient, offline (a
connection anywhere but this machine fails the test). The Python examples of docs/api.md run
here too and must print what it shows."""

from __future__ import annotations

import base64
import socket
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import openai
import pytest
from huggingface_hub import InferenceClient
from huggingface_hub.errors import HfHubHTTPError
from langchain_openai import OpenAIEmbeddings

from docs.readme_examples import python_examples, run_python
from tests.helpers import Server

TEXTS = ["A man is playing a guitar.", "Someone plays the guitar."]
NER_TEXT = "Barack Obama visited Paris last week."
LONG = " ".join(f"w{i}" for i in range(600))  # 600 words, over the 512 a text may have
LOCAL = ("127.0.0.1", "::1", "localhost")
pytestmark = pytest.mark.slow  # `python -m app` in a subprocess


@pytest.fixture(autouse=True)
def offline(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Clients may connect to this machine only; tiktoken finds no cached encodings."""
    connect = socket.socket.connect

    def local_connect(sock: socket.socket, address: Any) -> None:
        if isinstance(address, tuple) and address[0] not in LOCAL:
            raise OSError(f"a client tried to reach {address}; the tests run offline")
        connect(sock, address)

    monkeypatch.setattr(socket.socket, "connect", local_connect)
    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", str(tmp_path))
    monkeypatch.setenv("HF_HUB_DISABLE_TELEMETRY", "1")


def embed(base: str, texts: list[str], **fields: Any) -> np.ndarray:
    r = httpx.post(f"{base}/embed", json={"inputs": texts, **fields}, timeout=30)
    r.raise_for_status()
    return np.asarray(r.json(), dtype=np.float32)  # (N, D)


@pytest.mark.parametrize("example", range(5))
def test_api_md_examples_print_what_it_shows(server: Server, repo_root: Path, example: int) -> None:
    examples = python_examples(repo_root / "docs" / "api.md")
    assert len(examples) == 5, "CoNLL-U, spaCy, and one per client: OpenAI, LangChain, HF hub"
    code, shown = examples[example]
    assert run_python(code, server.base) == shown


def test_openai_sdk(server: Server) -> None:
    client = openai.OpenAI(base_url=f"{server.base}/v1", api_key="-", max_retries=0)
    expected = embed(server.base, TEXTS)
    as_floats = client.embeddings.create(model="bigru-en", input=TEXTS, encoding_format="float")
    got = np.asarray([d.embedding for d in as_floats.data], dtype=np.float32)
    assert got.tolist() == expected.tolist()  # the same float32 values
    raw = client.embeddings.with_raw_response.create(model="bigru-en", input=TEXTS).http_response
    encoded = [d["embedding"] for d in raw.json()["data"]]  # the SDK's default: base64
    assert [np.frombuffer(base64.b64decode(e), "<f4").tolist() for e in encoded] == got.tolist()

    with pytest.raises(openai.APIStatusError) as too_long:
        client.embeddings.create(model="bigru-en", input=LONG)
    e = too_long.value
    assert (e.status_code, e.code, e.type) == (413, "too_large", "invalid_request_error")
    assert str(e) == "Error code: 413 - an input has 600 tokens; at most 512"

    # what LangChain's OpenAIEmbeddings sends by default: tiktoken's ids
    with pytest.raises(openai.UnprocessableEntityError) as ids:
        client.embeddings.create(model="bigru-en", input=[[29029, 374, 264]])
    assert "check_embedding_ctx_length=False" in str(ids.value)


def test_langchain_openai_embeddings(server: Server) -> None:
    texts = [f"Sentence number {i} is about guitars." for i in range(300)]
    settings: dict[str, Any] = {
        "model": "bigru-en",
        "base_url": f"{server.base}/v1",
        "api_key": "-",
        "check_embedding_ctx_length": False,
        "max_retries": 0,
    }
    vectors = OpenAIEmbeddings(**settings, chunk_size=256).embed_documents(texts)
    expected = np.concatenate([embed(server.base, texts[:150]), embed(server.base, texts[150:])])
    assert np.asarray(vectors, dtype=np.float32).tolist() == expected.tolist()
    # its default chunk_size (1,000) is over the limit: the error says by how much
    with pytest.raises(openai.APIStatusError, match="300 inputs; at most 256 per request"):
        OpenAIEmbeddings(**settings).embed_documents(texts)


def test_huggingface_hub_feature_extraction(server: Server) -> None:
    client = InferenceClient(model=server.base)
    got = client.feature_extraction(TEXTS[0])
    assert got.tolist() == embed(server.base, TEXTS[:1]).tolist()
    words = LONG.split()
    for direction, kept in (("Right", words[:512]), ("Left", words[-512:])):
        cut = client.feature_extraction(LONG, truncate=True, truncation_direction=direction)
        assert cut == pytest.approx(embed(server.base, [" ".join(kept)]), abs=1e-6)
    with pytest.raises(HfHubHTTPError, match="this model has no prompts") as refused:
        client.feature_extraction(TEXTS[0], prompt_name="query")
    assert refused.value.response.status_code == 422


def test_openai_sdk_dimensions(server: Server) -> None:
    client = openai.OpenAI(base_url=f"{server.base}/v1", api_key="-", max_retries=0)
    short = client.embeddings.create(model="bigru-en", input=TEXTS, dimensions=128)
    got = np.asarray([d.embedding for d in short.data], dtype=np.float32)
    assert got.shape == (len(TEXTS), 128)
    np.testing.assert_allclose(np.linalg.norm(got, axis=1), 1, rtol=1e-5)


def test_huggingface_hub_sentence_similarity(server: Server) -> None:
    client = InferenceClient(model=f"{server.base}/similarity")
    scores = client.sentence_similarity(TEXTS[0], TEXTS[1:])
    vectors = embed(server.base, TEXTS)
    assert scores == pytest.approx((vectors[1:] @ vectors[0]).tolist(), abs=1e-6)


def test_huggingface_hub_token_classification(server: Server) -> None:
    client = InferenceClient(model=f"{server.base}/pipeline/token-classification")
    got = client.token_classification(NER_TEXT)
    r = httpx.post(f"{server.base}/tag", json={"inputs": NER_TEXT}, timeout=30)
    [tagged] = r.json()
    assert [(g.entity_group, g.word, g.start, g.end, g.score) for g in got] == [
        (e["label"], e["text"], e["start"], e["end"], e["score"]) for e in tagged["entities"]
    ]
    assert [g.entity_group for g in got] == ["PER", "LOC"]
    assert client.token_classification(NER_TEXT, ignore_labels=["PER"])[0].word == "Paris"
    words = client.token_classification(NER_TEXT, aggregation_strategy="none")
    r = httpx.post(f"{server.base}/tag", json={"inputs": NER_TEXT, "heads": ["ner"]}, timeout=30)
    tokens = r.json()[0]["tokens"]
    assert [(w.entity, w.word, w.start, w.end, w.score, w.index) for w in words] == [
        (t["ner"], t["text"], t["start"], t["end"], t["ner_score"], i + 1)
        for i, t in enumerate(tokens)
        if t["ner"] != "O"
    ]
    assert [w.entity for w in words] == ["B-PER", "I-PER", "B-LOC"]
