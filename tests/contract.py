"""Every route's contract, through the real app and model: the tests that tests/http/test_api.py
runs in-process and tests/container/test_contract.py through the compose stack's load
balancer (a module of its own, not a test module, so that neither imports the other)."""

from __future__ import annotations

import base64
import hashlib
import json
import re
import secrets
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient

from app.config import Settings, usable_cores
from app.main import create_app
from app.model.decode import iob2_spans
from app.model.featurize import WordPiece, featurize
from app.model.text import tokenize
from tests.helpers import error_of

TEXTS = [
    "Barack Obama visited Berlin and met Angela Merkel at the Chancellery.",
    "Apple Inc. hired John Smith in New York last year.",
    "I don't think the U.S. office will open on Monday.",
]
ENTITY_KEYS = {"text", "label", "start", "end", "token_start", "token_end", "score"}


@pytest.fixture(scope="module")
def spec(model_dir: Path) -> dict:
    """model.json, with each head's labels under `<head>_labels` and its CRF under `crf`."""
    spec = json.loads((model_dir / "model.json").read_text())
    for head in spec["heads"]:
        spec[f"{head['name']}_labels"] = head["labels"]
        spec.setdefault("crf", head.get("crf"))
    spec["token_keys"] = {"text", "start", "end"} | {
        key for h in spec["heads"] for key in (h["name"], f"{h['name']}_score")
    }
    if "parser" in spec:  # the parse: each token's head, relation and its score
        spec["token_keys"] |= {"head", spec["parser"]["name"], f"{spec['parser']['name']}_score"}
    return spec


def assert_error(response, status: int, error_type: str) -> None:
    assert response.status_code == status, response.text
    assert error_of(response)[1] == error_type


# /tag


def test_tag_raw_text_contract(client: TestClient, spec: dict) -> None:
    r = client.post("/tag", json={"inputs": TEXTS})
    assert r.status_code == 200
    results = r.json()
    assert len(results) == len(TEXTS)
    n_entities = 0
    for text, result in zip(TEXTS, results, strict=True):
        assert result.keys() == {"tokens", "entities", "sentences"}
        tokens = result["tokens"]
        covered = [i for s in result["sentences"] for i in range(s["token_start"], s["token_end"])]
        assert covered == list(range(len(tokens)))
        assert [t["text"] for t in tokens] == [t.text for t in tokenize(text)]
        for t in tokens:
            assert t.keys() == spec["token_keys"]
            assert text[t["start"] : t["end"]] == t["text"]
            assert t["upos"] in spec["upos_labels"] and t["ner"] in spec["ner_labels"]
            assert 0 < t["upos_score"] <= 1 and 0 < t["ner_score"] <= 1
        spans = iob2_spans([t["ner"] for t in tokens])
        assert [(e["label"], e["token_start"], e["token_end"]) for e in result["entities"]] == [
            (s.label, s.start, s.end) for s in spans
        ]
        for e in result["entities"]:
            assert e.keys() == ENTITY_KEYS
            inside = tokens[e["token_start"] : e["token_end"]]  # token_end is exclusive
            assert e["start"] == inside[0]["start"] and e["end"] == inside[-1]["end"]
            assert e["text"] == text[e["start"] : e["end"]]
            mean = np.mean([t["ner_score"] for t in inside])
            assert e["score"] == pytest.approx(mean, abs=1e-4)  # both to 4 decimals
            n_entities += 1
    assert n_entities > 0


def test_tag_single_string_is_a_list_of_one(client: TestClient) -> None:
    one = client.post("/tag", json={"inputs": TEXTS[0]}).json()
    many = client.post("/tag", json={"inputs": TEXTS}).json()
    assert one == many[:1]


def test_tag_pre_tokenized_tokens_are_kept_exactly(client: TestClient) -> None:
    words = ["NewYork", "isn't", "U.S.", "big", "!", "👩‍👩‍👧"]  # the raw tokenizer would split
    r = client.post("/tag", json={"tokens": [words, ["Hello"]]})
    assert r.status_code == 200
    first = r.json()[0]
    assert [t["text"] for t in first["tokens"]] == words
    assert all(t["start"] is None and t["end"] is None for t in first["tokens"])
    for e in first["entities"]:
        assert e["start"] is None and e["end"] is None
        assert e["text"] == " ".join(words[e["token_start"] : e["token_end"]])


def test_tag_pre_tokenized_equals_raw_with_same_tokens(client: TestClient) -> None:
    raw = client.post("/tag", json={"inputs": TEXTS[1]}).json()[0]
    words = [t["text"] for t in raw["tokens"]]
    pre = client.post("/tag", json={"tokens": [words]}).json()[0]
    strip = ("start", "end")
    assert [{k: v for k, v in t.items() if k not in strip} for t in pre["tokens"]] == [
        {k: v for k, v in t.items() if k not in strip} for t in raw["tokens"]
    ]


# /embed and /v1/embeddings


def test_embed_normalized_and_raw(client: TestClient, spec: dict) -> None:
    unit = client.post("/embed", json={"inputs": TEXTS}).json()
    raw = client.post("/embed", json={"inputs": TEXTS, "normalize": False}).json()
    assert len(unit) == len(raw) == len(TEXTS)
    for u, v in zip(unit, raw, strict=True):
        assert len(u) == len(v) == spec["embedding_dim"]
        assert np.linalg.norm(u) == pytest.approx(1.0, abs=1e-5)
        assert np.asarray(u) == pytest.approx(np.asarray(v) / np.linalg.norm(v), abs=1e-6)


def test_embed_single_string(client: TestClient) -> None:
    assert (
        client.post("/embed", json={"inputs": TEXTS[0]}).json()
        == client.post("/embed", json={"inputs": TEXTS[:1]}).json()
    )


def test_embed_word_limit_counts_every_word(model_dir: Path) -> None:
    """/embed counts words as /tag does, though it reads pieces per chunk: a final `etc.` is two
    words (`etc .`), `its` before some words is two (`it s`)."""
    app = create_app(Settings(model_dir=model_dir, max_tokens_per_input=3))
    cases = {"a b etc": 200, "a b etc.": 413, "its a b": 413, "it a b": 200, "a, b": 200}
    with TestClient(app) as client:
        for text, status in cases.items():
            r = client.post("/embed", json={"inputs": text})
            assert r.status_code == status, (text, r.text)
            # /tag cuts a longer run into sentences of at most 3 words
            tagged = client.post("/tag", json={"inputs": text}).json()[0]
            assert [t["text"] for t in tagged["tokens"]] == [t.text for t in tokenize(text)]
            assert all(s["token_end"] - s["token_start"] <= 3 for s in tagged["sentences"])


def test_openai_embeddings_float_and_base64(client: TestClient, model_dir: Path) -> None:
    model = client.get("/info").json()["model"]["name"]
    body = {"input": TEXTS[:2], "model": model}
    floats = client.post("/v1/embeddings", json=body).json()
    b64 = client.post("/v1/embeddings", json={**body, "encoding_format": "base64"}).json()
    assert floats.keys() == {"object", "data", "model", "usage"}
    assert floats["object"] == "list"
    assert floats["model"] == model
    unknown = client.post("/v1/embeddings", json={**body, "model": "text-embedding-3-small"})
    assert unknown.status_code == 404
    assert unknown.json()["error"]["code"] == "model_not_found"
    assert model in unknown.json()["error"]["message"]  # it lists the names
    assert [d["index"] for d in floats["data"]] == [0, 1]
    assert floats["data"][0]["object"] == "embedding"
    # the same float32 values as /embed's, in the same digits
    embed = client.post("/embed", json={"inputs": TEXTS[:2]}).json()
    assert [d["embedding"] for d in floats["data"]] == embed
    for f, b in zip(floats["data"], b64["data"], strict=True):
        decoded = np.frombuffer(base64.b64decode(b["embedding"]), dtype="<f4")
        assert decoded.tolist() == np.array(f["embedding"], dtype=np.float32).tolist()
    wordpiece = WordPiece.from_file(model_dir / "vocab.txt")
    pieces = sum(featurize([t.text for t in tokenize(x)], wordpiece).length for x in TEXTS[:2])
    assert floats["usage"] == {"prompt_tokens": pieces, "total_tokens": pieces}


def test_openai_embeddings_dimensions_beyond_the_vector(client: TestClient) -> None:
    r = client.post("/v1/embeddings", json={"input": "hi", "dimensions": 1000})
    assert_error(r, 422, "invalid_input")


# errors (bad input: tests/http/test_bad_input.py)


def test_unknown_route_and_method(client: TestClient) -> None:
    assert_error(client.get("/nope"), 404, "not_found")
    assert_error(client.get("/tag"), 405, "method_not_allowed")


@pytest.fixture(scope="module")
def small_client(model_dir: Path):
    settings = Settings(
        model_dir=model_dir,
        max_inputs_per_request=3,
        max_chars_per_input=100,
        max_tokens_per_input=10,
        max_pieces_per_input=50,
        max_body_bytes=1000,
    )
    with TestClient(create_app(settings)) as c:
        yield c


@pytest.mark.parametrize(
    "route, body",
    [
        ("/tag", {"inputs": ["a"] * 4}),
        ("/tag", {"tokens": [["a"]] * 4}),
        ("/tag", {"tokens": [["a"] * 11]}),
        ("/tag", {"tokens": [["x" * 60, "y" * 60]]}),
        ("/tag", {"inputs": "a." * 30}),  # one word, 60 pieces
        ("/tag", {"tokens": [["-" * 60]]}),
        ("/embed", {"inputs": "a " * 11}),
        ("/embed", {"inputs": "a." * 30}),
        ("/v1/embeddings", {"input": ["a"] * 4}),
    ],
)
def test_over_limits_are_413(small_client: TestClient, route: str, body: dict) -> None:
    assert_error(small_client.post(route, json=body), 413, "too_large")


def test_a_document_at_the_body_limit_is_tagged_one_byte_over_is_413(
    small_client: TestClient,
) -> None:
    def body(size: int) -> bytes:
        head = b'{"inputs": "'
        words = ("Alice moved to Paris. " * 100).encode()[: size - len(head) - 2]
        return head + words + b'"}'

    json_type = {"content-type": "application/json"}
    at_limit = small_client.post("/tag", content=body(1000), headers=json_type)
    assert at_limit.status_code == 200, at_limit.text
    [tagged] = at_limit.json()
    assert len(tagged["sentences"]) > 40  # 977 bytes of "Alice moved to Paris. "
    assert_error(small_client.post("/tag", content=body(1001), headers=json_type), 413, "too_large")


def test_body_over_max_bytes_is_413(small_client: TestClient) -> None:
    big = json.dumps({"inputs": "a" * 2000}).encode()
    assert_error(small_client.post("/tag", content=big), 413, "too_large")
    chunked = small_client.post("/tag", content=iter([big[:600], big[600:]]))  # no length
    assert_error(chunked, 413, "too_large")


def test_a_request_larger_than_the_queue_is_413_not_429(model_dir: Path) -> None:
    """A 429 invites a retry that could never fit; 429 with Retry-After under real overload is
    tested in test_overload.py."""
    with TestClient(create_app(Settings(model_dir=model_dir, max_queue=2))) as c:
        r = c.post("/embed", json={"inputs": ["a", "b", "c"]})
        assert_error(r, 413, "too_large")
        assert "retry-after" not in r.headers
        assert c.post("/embed", json={"inputs": ["a", "b"]}).status_code == 200
        # /tag feeds a request's sentences in as room frees up: never refused for its size
        text = "Alice moved to Paris. She likes it there. Bob stayed home. He was sad."
        r = c.post("/tag", json={"inputs": ["a", "b", "c", text]})
        assert r.status_code == 200 and len(r.json()[3]["sentences"]) == 4


# access: API key and CORS

KEY = "s3cret"
GUARDED = [
    ("POST", "/tag", {"inputs": "hi"}),
    ("POST", "/embed", {"inputs": "hi"}),
    ("POST", "/v1/embeddings", {"input": "hi"}),
    ("POST", "/", {"inputs": "hi"}),  # TEI's path; GET / is the page
    ("POST", "/invocations", {"inputs": "hi"}),
    ("POST", "/pipeline/token-classification", {"inputs": "hi"}),
    ("GET", "/info", None),
    ("GET", "/metrics", None),
    ("GET", "/docs", None),
    ("GET", "/openapi.json", None),
]
# the page asks for the key; Swagger UI's files are public
OPEN = ["/health", "/", "/static/page.js", "/static/page.css", "/swagger-ui/swagger-ui-bundle.js"]


@pytest.fixture(scope="module")
def keyed_client(model_dir: Path):
    with TestClient(create_app(Settings(model_dir=model_dir, api_key=KEY))) as c:
        yield c


@pytest.mark.parametrize("method, path, body", GUARDED)
def test_api_key_guards_every_route_but_health(
    keyed_client: TestClient, method: str, path: str, body: dict | None
) -> None:
    for headers in (
        {},
        {"Authorization": "Bearer nope"},
        {"Authorization": f"Bearer {KEY}x"},
        {"Authorization": f"Bearer {KEY[:-1]}"},
        {"Authorization": f"Basic {KEY}"},
        {"Authorization": KEY},
    ):
        r = keyed_client.request(method, path, json=body, headers=headers)
        assert_error(r, 401, "unauthorized")
        assert r.headers["www-authenticate"] == "Bearer"
    for scheme in ("Bearer", "bearer"):
        right = {"Authorization": f"{scheme} {KEY}"}
        assert keyed_client.request(method, path, json=body, headers=right).status_code == 200


def test_api_key_comes_before_body_checks(keyed_client: TestClient) -> None:
    assert_error(keyed_client.post("/tag", json={"nope": 1}), 401, "unauthorized")


@pytest.mark.parametrize("path", OPEN)
def test_api_key_leaves_health_and_the_page_open(keyed_client: TestClient, path: str) -> None:
    assert keyed_client.get(path).status_code == 200


def test_api_key_is_compared_in_constant_time(
    keyed_client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    compared: list[tuple[bytes, bytes]] = []
    original = secrets.compare_digest

    def compare_digest(a: bytes, b: bytes) -> bool:
        compared.append((a, b))
        return original(a, b)

    monkeypatch.setattr("app.http.guards.secrets.compare_digest", compare_digest)
    keyed_client.get("/info", headers={"Authorization": "Bearer guess"})
    keyed_client.get("/info")
    assert compared == [(b"guess", KEY.encode()), (b"", KEY.encode())]


def test_docs_work_with_the_key(keyed_client: TestClient) -> None:
    """The page embeds the schema, so a browser that sent the key once needs nothing else."""
    page = keyed_client.get("/docs", headers={"Authorization": f"Bearer {KEY}"})
    assert '"spec":' in page.text and '"/v1/embeddings"' in page.text
    assert keyed_client.get("/redoc").status_code == 404  # no second, unguarded docs page


def test_cors_is_off_by_default(client: TestClient) -> None:
    origin = {"Origin": "https://a.example"}
    r = client.get("/health", headers=origin)
    assert r.status_code == 200 and "access-control-allow-origin" not in r.headers
    preflight = client.options("/tag", headers={**origin, "Access-Control-Request-Method": "POST"})
    assert "access-control-allow-origin" not in preflight.headers


def test_cors_allows_only_the_configured_origins(model_dir: Path) -> None:
    settings = Settings(model_dir=model_dir, cors_origins=["https://a.example"], api_key=KEY)
    with TestClient(create_app(settings)) as c:
        ask = {"Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "*"}
        ok = c.options("/tag", headers={"Origin": "https://a.example", **ask})
        assert ok.status_code == 200  # a preflight carries no key and needs none
        assert ok.headers["access-control-allow-origin"] == "https://a.example"
        assert "POST" in ok.headers["access-control-allow-methods"]
        other = c.options("/tag", headers={"Origin": "https://b.example", **ask})
        assert "access-control-allow-origin" not in other.headers
        auth = {"Origin": "https://a.example", "Authorization": f"Bearer {KEY}"}
        r = c.post("/tag", json={"inputs": "hi"}, headers=auth)
        assert r.status_code == 200
        assert r.headers["access-control-allow-origin"] == "https://a.example"
        assert "x-request-id" in r.headers["access-control-expose-headers"].lower()
        denied = c.post("/tag", json={"inputs": "hi"}, headers={"Origin": "https://a.example"})
        assert denied.status_code == 401  # the browser may read why
        assert denied.headers["access-control-allow-origin"] == "https://a.example"
        r = c.get("/health", headers={"Origin": "https://b.example"})
        assert "access-control-allow-origin" not in r.headers


def test_request_id_in_and_out(client: TestClient) -> None:
    r = client.get("/health", headers={"X-Request-ID": "abc-123"})
    assert r.headers["x-request-id"] == "abc-123"
    r = client.get("/health", headers={"X-Request-ID": "bad id\x01"})
    assert r.headers["x-request-id"] not in ("", "bad id\x01")


# /health, /info, /metrics, /docs


def test_health_is_503_before_startup(model_dir: Path) -> None:
    c = TestClient(create_app(Settings(model_dir=model_dir)))  # no `with`: lifespan not run
    assert_error(c.get("/health"), 503, "not_ready")
    assert_error(c.post("/tag", json={"inputs": "hi"}), 503, "not_ready")


def test_health_ok(client: TestClient) -> None:
    r = client.get("/health")
    assert r.status_code == 200 and r.json() == {"status": "ok"}


def test_info(client: TestClient, model_dir: Path, spec: dict) -> None:
    info = client.get("/info").json()
    sha = hashlib.sha256((model_dir / "model.onnx").read_bytes()).hexdigest()
    assert info["model"]["sha256"] == sha
    assert info["model"]["name"] and info["model"]["version"]
    assert info["upos_labels"] == spec["upos_labels"]
    assert info["ner_labels"] == spec["ner_labels"]
    assert set(info["entity_labels"]) == {t[2:] for t in spec["ner_labels"] if t != "O"}
    assert info["embedding_dim"] == spec["embedding_dim"]
    assert info["providers"][-1] == "CPUExecutionProvider"
    cpus = usable_cores()  # the client's settings are the defaults: BIGRU_PROCESSES=auto
    assert (info["processes"], info["workers"]) == (cpus, 1)  # workers: cpus // processes
    assert info["limits"]["max_batch_size"] == 32 and info["limits"]["max_queue"] == 2048
    assert info["package_version"]


def test_metrics(client: TestClient) -> None:
    client.post("/tag", json={"inputs": "Hello there."})
    model = client.get("/info").json()["model"]["name"]
    r = client.get("/metrics")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    for name in (
        f'bigru_requests_total{{model="{model}",route="/tag",status="200"}}',
        f'bigru_request_seconds_bucket{{le="0.005",model="{model}",route="/tag"}}',
        f'bigru_ort_runs_total{{model="{model}",task="tag"}}',
        f'bigru_ort_runs_total{{model="{model}",task="embed"}}',
        "bigru_queue_size ",
        "bigru_batch_size_bucket",
        "bigru_batch_tokens_bucket",
        "bigru_inference_seconds_count",
    ):
        assert name in r.text


def test_docs(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    assert {"/tag", "/embed", "/v1/embeddings", "/health", "/info", "/metrics"} <= paths.keys()
    assert {"/", "/invocations", "/pipeline/token-classification"} <= paths.keys()
    assert paths["/"].keys() == {"post"}  # GET / is the page, not part of the API


def test_docs_load_nothing_from_another_host(client: TestClient) -> None:
    """Swagger UI's script, style and icon come from this server; the browser test
    (tests/http/test_page.py) checks what the rendered page requests."""
    page = client.get("/docs")
    assert page.status_code == 200
    assert "default-src 'self'" in page.headers["content-security-policy"]
    links = re.findall(r"""(?:src|href)\s*=\s*["']([^"']*)["']""", page.text)
    assert len(links) == 3, links
    for link in links:
        assert not re.match(r"[A-Za-z][A-Za-z0-9+.-]*:|//", link), f"not relative: {link}"
        assert client.get(f"/{link}").status_code == 200, link
    assert '"validatorUrl": null' in page.text  # no badge image from swagger.io
