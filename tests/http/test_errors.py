"""The one writer of error bodies (app/http/errors.py): each in its path's shape with its
status and headers, and pydantic's errors as one readable message."""

from __future__ import annotations

import logging

import orjson
import pytest
from pydantic import ValidationError

from app.core.errors import BackendError, OverloadedError
from app.http.errors import NOT_AN_OBJECT, error_response, service_error_response
from app.http.errors import validation_message as message
from app.http.native import EmbedRequest, TagRequest


def errors(model: type[TagRequest | EmbedRequest], raw: bytes) -> list:
    with pytest.raises(ValidationError) as e:
        model.model_validate_json(raw)
    return e.value.errors()


def test_native_and_openai_shapes_by_path() -> None:
    native = error_response("/embed", "overloaded", "the queue is full")
    assert orjson.loads(native.body) == {"error": "the queue is full", "error_type": "overloaded"}
    v1 = error_response("/v1/embeddings", "overloaded", "the queue is full")
    assert orjson.loads(v1.body) == {
        "error": {
            "message": "the queue is full",
            "type": "rate_limit_error",
            "param": None,
            "code": "overloaded",
        }
    }
    for r in (native, v1):
        assert (r.status_code, r.headers["retry-after"]) == (429, "1")
        assert r.headers["content-type"] == "application/json"
        assert int(r.headers["content-length"]) == len(r.body)


def test_statuses_and_headers_of_error_types() -> None:
    unauthorized = error_response("/tag", "unauthorized", "no key")
    assert (unauthorized.status_code, unauthorized.headers["www-authenticate"]) == (401, "Bearer")
    assert error_response("/tag", "too_large", "big").status_code == 413
    assert error_response("/nope", "http", "I'm a teapot", 418).status_code == 418


def test_a_5xx_is_logged_a_4xx_is_not(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.ERROR, logger="app.http.errors"):
        assert service_error_response("/tag", OverloadedError("full")).status_code == 429
        assert not caplog.records
        assert service_error_response("/tag", BackendError("ORT failed")).status_code == 500
    assert [r.getMessage() for r in caplog.records] == ["backend: ORT failed"]


def test_a_field_the_body_lacks_is_named_with_the_ones_it_has() -> None:
    said = message(errors(TagRequest, b'{"text": "a"}'), TagRequest.model_fields)
    assert said == (
        "text: Extra inputs are not permitted; this body's fields are `inputs`, `tokens`, "
        "`heads`, `format` and `model`"
    )
    assert message(errors(TagRequest, b'{"inputs": "a", "x": 1}'), ["inputs"]).endswith(
        "this body's fields are `inputs`"
    )


def test_json_errors_name_the_line_and_column() -> None:
    said = message(errors(TagRequest, b'{\n "inputs": ["a",\n }'), TagRequest.model_fields)
    assert said.startswith("the body is not valid JSON: ") and "at line 3, column 2" in said


def test_a_body_that_is_not_an_object_and_nested_locations() -> None:
    assert message(errors(EmbedRequest, b'["a"]'), EmbedRequest.model_fields) == NOT_AN_OBJECT
    said = message(errors(TagRequest, b'{"tokens": [["a", 1]]}'), TagRequest.model_fields)
    assert said == "tokens.0.1: Input should be a valid string"
