"""The native API's bodies (app/http/native.py): /tag takes exactly one of `inputs` and
`tokens`, each token one word; /embed's TEI fields. Through the app: tests/http/test_api.py."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from app.http.native import EmbedRequest, TagRequest


@pytest.mark.parametrize(
    "raw",
    [b"{}", b'{"inputs": null}', b'{"inputs": "a", "tokens": [["a"]]}', b'{"tokens": [["a b"]]}'],
)
def test_tag_request_refused(raw: bytes) -> None:
    with pytest.raises(ValidationError):
        TagRequest.model_validate_json(raw)


def test_tag_request_schema_says_exactly_one() -> None:
    schema = TagRequest.model_json_schema()
    assert schema["oneOf"] == [{"required": ["inputs"]}, {"required": ["tokens"]}]
    assert "anyOf" not in schema["properties"]["tokens"]  # null is read as absent, not offered


def test_embed_truncation() -> None:
    def truncation(**fields: object) -> str | None:
        return EmbedRequest.model_validate({"inputs": "a", **fields}).truncation

    assert truncation() is None
    assert truncation(truncate=True) == "right"
    assert truncation(truncate=True, truncation_direction="Left") == "left"
    assert truncation(truncation_direction="Left") is None


def test_embed_has_no_prompts() -> None:
    with pytest.raises(ValidationError, match="no prompts, so none named 'query'"):
        EmbedRequest.model_validate({"inputs": "a", "prompt_name": "query"})
    assert EmbedRequest.model_json_schema()["properties"]["prompt_name"]["type"] == "null"
