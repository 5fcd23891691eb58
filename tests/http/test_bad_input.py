"""Bad input, one table through the real app and model: every row gets its documented status
(a JSON error body for a 4xx, never a 5xx; `{error, error_type}`, or OpenAI's shape under /v1/)
and the service stays healthy after it.

Empty or whitespace-only text (control characters count as whitespace) is not an error for
/tag, which returns no tokens for it, and a 422 `empty_input` for the embedding routes.
"""

from __future__ import annotations

import json
import math
import unicodedata
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.helpers import error_of

ROUTES = {"/tag": "inputs", "/embed": "inputs", "/v1/embeddings": "input"}
HF = "/pipeline/token-classification"
SUM = {"aggregation_strategy": "sum"}
MB = 1024 * 1024
EMOJI = "I ❤️ 𝔘𝔫𝔦𝔠𝔬𝔡𝔢 😀 👩‍👩‍👧 🇫🇷 and 𠀀 in Paris."
CONTROL = "Alice\x00lives\x01in\x7fParis\u200b.\ufeff Bob\x1b[31m left\u0085."
RTL = "\u200fשלום עולם, مرحبا بالعالم from Tel Aviv."
RULE = "tokens.0.1: a token must be non-empty, with no whitespace or control characters"
CTYPE = "Content-Type: application/json"
NOT_JSON = "the body is not valid JSON: "  # then what the parser expected, and where
IDS = "OpenAIEmbeddings(check_embedding_ctx_length=False)"
BOOL = "normalize: Input should be a valid boolean"


def case(
    name: str,
    route: str,
    body: Any,
    status: int,
    error_type: str | None = None,
    *,
    content_type: str | None = "application/json",
    message: str = "",
) -> Any:
    """One row: `body` is JSON-encoded unless it is bytes (sent as they are)."""
    return pytest.param(route, body, content_type, status, error_type, message, id=name)


def each_route(name: str, text: Any, status: int, error_type: str | None = None) -> list[Any]:
    """The same text to /tag, /embed and /v1/embeddings."""
    return [
        case(f"{name}{route}", route, {key: text}, status, error_type)
        for route, key in ROUTES.items()
    ]


def embed_routes(name: str, text: Any, status: int, error_type: str | None = None) -> list[Any]:
    return [
        case(f"{name}{route}", route, {ROUTES[route]: text}, status, error_type)
        for route in ("/embed", "/v1/embeddings")
    ]


CASES = [
    # not JSON, not an object, not sent as JSON
    *[
        case(f"invalid-json{r}", r, b'{"inputs": ', 422, "validation", message=NOT_JSON)
        for r in ROUTES
    ],
    case("trailing-garbage", "/tag", b'{"inputs": "a"} x', 422, "validation", message="trailing"),
    case("json-where", "/tag", b'{"inputs": "a",\n "b" 1}', 422, message="line 2, column 6"),
    case("not-utf8", "/tag", '{"inputs": "café"}'.encode("latin-1"), 422, "validation"),
    case("deep-nesting", "/tag", b'{"inputs": ' + b"[" * 100_000 + b"]" * 100_000 + b"}", 422),
    case("huge-number", "/embed", b'{"inputs": "a", "normalize": ' + b"9" * 5000 + b"}", 422),
    case("no-body", "/tag", b"", 422, "validation", message="JSON object"),
    case("json-null", "/tag", b"null", 422, "validation", message="JSON object"),
    case("json-array", "/embed", b'["a"]', 422, "validation", message="JSON object"),
    case("json-string", "/v1/embeddings", b'"a"', 422, "validation", message="JSON object"),
    *[
        case(f"content-type-{n}", "/tag", b, 422, "validation", content_type=t, message=CTYPE)
        for n, b, t in [
            ("text", b'{"inputs": "a"}', "text/plain"),
            ("form", b"inputs=a", "application/x-www-form-urlencoded"),
            ("missing", b'{"inputs": "a"}', None),
        ]
    ],
    # wrong field types, unknown fields
    case("inputs-number", "/tag", {"inputs": 3}, 422, "validation"),
    case("inputs-object", "/embed", {"inputs": {"text": "a"}}, 422, "validation"),
    case("token-ids", "/v1/embeddings", {"input": [1, 2]}, 422, "validation", message=IDS),
    case("token-id-lists", "/v1/embeddings", {"input": [[1, 2], [3]]}, 422, message=IDS),
    case("tokens-string", "/tag", {"tokens": "a b"}, 422, "validation"),
    case("tokens-flat", "/tag", {"tokens": ["a", "b"]}, 422, "validation"),
    case("normalize-word", "/embed", {"inputs": "a", "normalize": "maybe"}, 422, "validation"),
    # JSON types are strict: no string or number read as a bool, no string as a number
    case("normalize-yes", "/embed", {"inputs": "a", "normalize": "yes"}, 422, message=BOOL),
    case("normalize-true-string", "/embed", {"inputs": "a", "normalize": "true"}, 422),
    case("normalize-one", "/embed", {"inputs": "a", "normalize": 1}, 422, message=BOOL),
    case("truncate-string", "/embed", {"inputs": "a", "truncate": "true"}, 422, "validation"),
    case("dimensions-string", "/v1/embeddings", {"input": "a", "dimensions": "384"}, 422),
    case("dimensions-float", "/v1/embeddings", {"input": "a", "dimensions": 384.0}, 422),
    # TEI's fields: a direction is Left or Right; the model has no prompts
    case("direction-lower", "/embed", {"inputs": "a", "truncation_direction": "left"}, 422),
    case("prompt", "/embed", {"inputs": "a", "prompt_name": "query"}, 422, message="no prompts"),
    case("prompt-tei-path", "/", {"inputs": "a", "prompt_name": "q"}, 422, message="no prompts"),
    case("prompt-null", "/embed", {"inputs": "a", "prompt_name": None}, 200),
    # the token-classification pipeline: a text or a list of them; the pipeline's strategies
    case("hf-inputs-empty-list", HF, {"inputs": []}, 422, "validation"),
    case("hf-inputs-number", HF, {"inputs": 3}, 422, "validation"),
    case("hf-strategy-sum", HF, {"inputs": "a", "parameters": SUM}, 422, message="'none'"),
    case("hf-stride", HF, {"inputs": "a", "parameters": {"stride": 4}}, 422, "validation"),
    case("format-hex", "/v1/embeddings", {"input": "a", "encoding_format": "hex"}, 422),
    case("dimensions-word", "/v1/embeddings", {"input": "a", "dimensions": "x"}, 422),
    case("unknown-field-tag", "/tag", {"inputs": "a", "extra": 1}, 422, "validation"),
    # a field by another name: the message names the body's fields
    case("text-for-inputs", "/tag", {"text": "a"}, 422, message="fields are `inputs`, `tokens`"),
    case("text-for-embed", "/embed", {"text": "a"}, 422, message="fields are `inputs`, `normal"),
    case("unknown-field-embed", "/embed", {"inputs": "a", "text": "b"}, 422, "validation"),
    case("unknown-field-v1", "/v1/embeddings", {"input": "a", "inputs": "b"}, 422),
    case("misspelt-field", "/v1/embeddings", {"inputs": "a"}, 422, message="are `input`, `m"),
    # /tag takes exactly one of inputs and tokens
    case("both", "/tag", {"inputs": "a", "tokens": [["a"]]}, 422, "validation", message="one"),
    case("neither", "/tag", {}, 422, "validation", message="exactly one"),
    case("inputs-null", "/tag", {"inputs": None}, 422, "validation", message="exactly one"),
    case("embed-neither", "/embed", {"normalize": True}, 422, "validation"),
    # empty lists are malformed; empty and whitespace-only texts are the documented cases
    *each_route("empty-list", [], 422, "validation"),
    case("tokens-empty-list", "/tag", {"tokens": []}, 422, "validation"),
    case("empty-string/tag", "/tag", {"inputs": ""}, 200),
    *embed_routes("empty-string", "", 422, "empty_input"),
    case("whitespace/tag", "/tag", {"inputs": " \n\t\u3000 "}, 200),
    *embed_routes("whitespace", " \n\t\u3000 ", 422, "empty_input"),
    *embed_routes("one-of-many-empty", ["fine", "\n"], 422, "empty_input"),
    case("control-only/tag", "/tag", {"inputs": "\x00\x01\x7f"}, 200),
    *embed_routes("control-only", "\x00\x01\x7f", 422, "empty_input"),
    case("tag-mixed-empty", "/tag", {"inputs": ["Hi there.", " ", ""]}, 200),
    case("tokens-empty-sentence", "/tag", {"tokens": [[], ["Hi"]]}, 200),
    # too large: 413 from the limits, before any work
    *embed_routes("one-mb-string", "x" * MB, 413, "too_large"),
    case("one-mb-string/tag", "/tag", {"inputs": "x" * MB}, 200),
    *each_route("ten-thousand-inputs", ["a"] * 10_000, 413, "too_large"),
    *embed_routes("five-thousand-words", "word " * 5_000, 413, "too_large"),
    case("five-thousand-words/tag", "/tag", {"inputs": "word " * 5_000}, 200),
    case("whitespace-and-newlines/tag", "/tag", {"inputs": " \n\n \t\r\n" * 50_000}, 200),
    case("hundred-thousand-one-word-lines/tag", "/tag", {"inputs": "word\n" * 100_000}, 200),
    case("two-mb-of-one-word/tag", "/tag", {"inputs": "x" * (2 * MB)}, 413, "too_large"),
    case("five-thousand-tokens", "/tag", {"tokens": [["word"] * 5_000]}, 413, "too_large"),
    *[
        case(f"body-over-2mb{r}", r, json.dumps({k: "a" * (3 * MB)}).encode(), 413, "too_large")
        for r, k in ROUTES.items()
    ],
    # nested and non-string values
    *each_route("nested-list", [["a"]], 422, "validation"),
    case("tokens-nested-deeper", "/tag", {"tokens": [[["a"]]]}, 422, "validation"),
    case("tokens-numbers", "/tag", {"tokens": [[1, 2]]}, 422, "validation"),
    case("tokens-null", "/tag", {"tokens": [["a", None]]}, 422, "validation"),
    case("tokens-bool", "/tag", {"tokens": [[True]]}, 422, "validation"),
    # pre-tokenized words are used exactly as given, so each must be one word
    *[
        case(f"token-{n}", "/tag", {"tokens": [["Alice", w]]}, 422, "validation", message=RULE)
        for n, w in [
            ("space", "New York"),
            ("empty", ""),
            ("tab", "a\tb"),
            ("newline", "a\n"),
            ("only-space", " "),
            ("nbsp", "a\u00a0b"),
            ("nul", "a\x00b"),
            ("escape", "\x1b"),
        ]
    ],
    case("tokens-emoji", "/tag", {"tokens": [["I", "❤️", "👩‍👩‍👧", "𠀀", "Paris"]]}, 200),
    case("tokens-rtl", "/tag", {"tokens": [["שלום", "مرحبا"]]}, 200),
    # text that is odd but valid: emoji and non-BMP, control characters, right-to-left
    *each_route("emoji", EMOJI, 200),
    *each_route("control", CONTROL, 200),
    *each_route("rtl", RTL, 200),
    case("emoji-alone", "/embed", {"inputs": "😀"}, 200),
    # not Unicode: lone surrogates written as JSON escapes
    case("surrogate", "/tag", b'{"inputs": "a\\ud800b"}', 422, "validation"),
    case("surrogate-low", "/tag", b'{"inputs": ["ok", "\\udfff"]}', 422, "validation"),
    case("surrogate-token", "/tag", b'{"tokens": [["\\ud800"]]}', 422, "validation"),
    case("surrogate-embed", "/embed", b'{"inputs": "\\ud800"}', 422, "validation"),
    case("surrogate-v1", "/v1/embeddings", b'{"input": "\\ud800"}', 422, "validation"),
    case("surrogate-pair-ok", "/tag", b'{"inputs": "\\ud83d\\ude00 ok"}', 200),
]


@pytest.mark.parametrize("route, body, content_type, status, error_type, message", CASES)
def test_bad_input(
    client: TestClient,
    route: str,
    body: Any,
    content_type: str | None,
    status: int,
    error_type: str | None,
    message: str,
) -> None:
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    headers = {"content-type": content_type} if content_type else {}
    r = client.post(route, content=content, headers=headers)
    assert r.status_code == status, r.text[:500]
    if status == 200:
        check_answer(route, json.loads(content), r.json())
    else:
        said, kind = error_of(r)
        if error_type is not None:
            assert kind == error_type
        assert message in said
    assert client.get("/health").status_code == 200


def check_answer(route: str, body: dict[str, Any], answer: Any) -> None:
    """What a 200 must hold for odd but valid input."""
    if route == "/tag" and "tokens" in body:
        assert [[t["text"] for t in r["tokens"]] for r in answer] == body["tokens"]
        return
    texts = body[ROUTES[route]]
    texts = [texts] if isinstance(texts, str) else texts
    if route == "/tag":
        assert len(answer) == len(texts)
        for text, result in zip(texts, answer, strict=True):
            for t in result["tokens"]:
                assert text[t["start"] : t["end"]] == t["text"]
                assert t["text"] and not any(_separator(c) for c in t["text"]), t
            if not text.strip() or all(_separator(c) for c in text):
                assert result == {"tokens": [], "entities": [], "sentences": []}
        return
    vectors = answer if route == "/embed" else [d["embedding"] for d in answer["data"]]
    assert len(vectors) == len(texts)
    for v in vectors:
        assert all(math.isfinite(x) for x in v)
        assert math.isclose(math.hypot(*v), 1.0, abs_tol=1e-5)


def _separator(c: str) -> bool:
    return c.isspace() or unicodedata.category(c) in ("Cc", "Cf") and c != "\u200d"


@pytest.mark.parametrize("route", ROUTES)
def test_a_json_error_names_its_line_and_column(client: TestClient, route: str) -> None:
    body = b'{\n  "' + ROUTES[route].encode() + b'": ["a",\n  }'
    r = client.post(route, content=body, headers={"content-type": "application/json"})
    said, _ = error_of(r)
    assert said.startswith(NOT_JSON) and "line 3" in said and "column" in said, said
