"""Several models in one server, end to end on real models: the test model (bigru-en) and a
drug-and-dose tagger trained here, served by one `python -m app` from a model repository
(BIGRU_MODELS_DIR); each answer compared with that of an app holding its model alone, and the
clients people use (the OpenAI SDK, huggingface_hub) reaching both."""

from __future__ import annotations

import math
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

pytestmark = pytest.mark.slow  # training, on torch, and a server in a subprocess
pytest.importorskip("torch")

import openai  # noqa: E402
from fastapi.testclient import TestClient  # noqa: E402
from huggingface_hub import InferenceClient  # noqa: E402

from app.config import Settings  # noqa: E402
from app.main import create_app  # noqa: E402
from tests.helpers import Server, metric, start_server  # noqa: E402
from tests.trained import TEXT, train_drug_model  # noqa: E402

MODELS = ("bigru-en", "drugs")
TEXTS = [
    TEXT,
    "Take ibuprofen at 200 mg daily.",
    "Barack Obama visited Paris last week. He liked it.",
    "A man is playing a guitar.",
    " ".join(["The patient got metformin at 5 ml daily."] * 6),  # a document of sentences
    "",
]


@pytest.fixture(scope="module")
def repository(model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("several")
    trained = root / "trained"
    trained.mkdir()
    train_drug_model(trained)
    models = root / "models"
    models.mkdir()
    (models / "bigru-en").symlink_to(model_dir.resolve())
    (models / "drugs").symlink_to(trained / "model")
    return models


@pytest.fixture(scope="module")
def server(
    repository: Path, model_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    log = tmp_path_factory.mktemp("server") / "server.log"
    running = start_server(model_dir, log, BIGRU_MODELS_DIR=str(repository))
    try:
        yield running
    finally:
        status = running.stop()
    assert status == 0, running.log.read_text()[-3000:]


@pytest.fixture(scope="module")
def alone(repository: Path) -> Iterator[dict[str, TestClient]]:
    """Each model in an app of its own, as a server of one model answers."""
    clients = {
        name: TestClient(create_app(Settings(model_dir=repository / name))) for name in MODELS
    }
    for client in clients.values():
        client.__enter__()
    yield clients
    for client in clients.values():
        client.__exit__(None, None, None)


def same(got: Any, expected: Any) -> bool:
    """Equal, scores within 1e-6: the parser's scores differ in their last digits between
    batches (float sums in another order); every label, offset and head is exact."""
    if isinstance(expected, dict):
        return got.keys() == expected.keys() and all(same(got[k], expected[k]) for k in expected)
    if isinstance(expected, list):
        return len(got) == len(expected) and all(map(same, got, expected))
    if isinstance(expected, float):
        return isinstance(got, float) and math.isclose(got, expected, abs_tol=1e-6)
    return got == expected


def test_info_and_v1_models_list_both(server: Server, alone: dict[str, TestClient]) -> None:
    info = httpx.get(f"{server.base}/info", timeout=10).json()
    listed = {m["name"]: m for m in info["models"]}
    assert list(listed) == list(MODELS) and info["model"]["name"] == "bigru-en"
    for name, client in alone.items():
        own = client.get("/info").json()
        assert listed[name]["sha256"] == own["model"]["sha256"]
        assert listed[name]["version"] == own["model"]["version"]
        assert listed[name]["tasks"] == own["tasks"]
        assert listed[name]["heads"] == [h["name"] for h in own["heads"]]
        assert listed[name]["default"] == (name == "bigru-en")
    drugs = httpx.get(f"{server.base}/info", params={"model": "drugs"}, timeout=10).json()
    assert drugs["tasks"] == ["tag"] and [h["name"] for h in drugs["heads"]] == ["pos", "ner"]
    listed_v1 = httpx.get(f"{server.base}/v1/models", timeout=10).json()
    assert [m["id"] for m in listed_v1["data"]] == list(MODELS)


def test_mixed_load_answers_as_each_model_alone(
    server: Server, alone: dict[str, TestClient]
) -> None:
    """Requests to both models at once, 16 in flight, every one answered as the model's own
    server answers it: no batch mixes models."""
    calls = [
        (path, {"inputs": text, "model": name})
        for text in TEXTS
        for name in MODELS
        for path in ("/tag", "/embed")
        if not (path == "/embed" and (name == "drugs" or not text))
    ] * 8
    expected = [alone[body["model"]].post(path, json=body).json() for path, body in calls]

    def post(call: tuple[str, dict[str, Any]]) -> Any:
        path, body = call
        r = httpx.post(f"{server.base}{path}", json=body, timeout=60)
        assert r.status_code == 200, r.text
        return r.json()

    with ThreadPoolExecutor(16) as pool:
        answers = list(pool.map(post, calls))
    wrong = [
        call
        for call, got, want in zip(calls, answers, expected, strict=True)
        if not same(got, want)
    ]
    assert not wrong, wrong[:3]
    for name in MODELS:  # each model's batches ran, and were counted under its name
        assert metric(server.base, f'bigru_ort_runs_total{{model="{name}",task="tag"}}') > 0


def test_the_openai_sdk_lists_and_uses_both(server: Server, alone: dict[str, TestClient]) -> None:
    client = openai.OpenAI(base_url=f"{server.base}/v1", api_key="-", max_retries=0)
    assert [m.id for m in client.models.list()] == list(MODELS)
    assert client.models.retrieve("drugs").id == "drugs"
    got = client.embeddings.create(model="bigru-en", input=TEXTS[:2])
    vectors = alone["bigru-en"].post("/embed", json={"inputs": TEXTS[:2]}).json()
    as_float32 = np.asarray([d.embedding for d in got.data], dtype=np.float32)
    assert as_float32.tolist() == np.asarray(vectors, dtype=np.float32).tolist()
    assert got.model == "bigru-en"
    with pytest.raises(openai.BadRequestError) as tagger_only:
        client.embeddings.create(model="drugs", input=TEXT)
    assert tagger_only.value.code == "no_sentence_encoder"
    with pytest.raises(openai.NotFoundError) as unknown:
        client.embeddings.create(model="text-embedding-3-small", input=TEXT)
    assert unknown.value.code == "model_not_found" and "'drugs'" in unknown.value.message


def test_huggingface_hub_reaches_each_model_by_its_url(
    server: Server, alone: dict[str, TestClient], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    for name in MODELS:
        url = f"{server.base}/models/{name}/pipeline/token-classification"
        got = InferenceClient(model=url).token_classification(TEXT)
        [tagged] = alone[name].post("/tag", json={"inputs": TEXT}).json()
        assert [(g.entity_group, g.word, g.start, g.end) for g in got] == [
            (e["label"], e["text"], e["start"], e["end"]) for e in tagged["entities"]
        ]
    vector = InferenceClient(model=f"{server.base}/models/bigru-en").feature_extraction(TEXT)
    own = alone["bigru-en"].post("/embed", json={"inputs": [TEXT]}).json()
    assert vector.tolist() == np.asarray(own, dtype=np.float32).tolist()
    similarity = InferenceClient(model=f"{server.base}/models/bigru-en/similarity")
    assert len(similarity.sentence_similarity(TEXT, TEXTS[1:3])) == 2
    refused = httpx.post(f"{server.base}/models/nope/tag", json={"inputs": TEXT}, timeout=10)
    assert refused.status_code == 404 and refused.json()["error_type"] == "model_not_found"
