"""What every request body shares (app/http/fields.py): strict JSON types, no unknown fields,
text that is valid Unicode."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from app.http.fields import Body, Text, Texts, as_list


class Sample(Body):
    text: Text
    texts: Texts = ["x"]
    flag: bool = False


@pytest.mark.parametrize(
    "raw",
    [
        b'{"text": "a", "flag": "true"}',  # no string read as a bool
        b'{"text": "a", "flag": 1}',
        b'{"text": 3}',  # no number read as a string
        b'{"text": "a", "other": 1}',  # no unknown field
        b'{"text": "a", "texts": []}',  # a list of texts is never empty
        b'{"text": "a\\ud800"}',  # a lone surrogate cannot be written back as UTF-8
    ],
)
def test_refused(raw: bytes) -> None:
    with pytest.raises(ValidationError):
        Sample.model_validate_json(raw)


def test_accepted() -> None:
    sample = Sample.model_validate_json(b'{"text": "\\ud83d\\ude00", "texts": [""], "flag": true}')
    assert (sample.text, sample.texts, sample.flag) == ("😀", [""], True)


def test_as_list() -> None:
    assert as_list("a") == ["a"]
    texts = ["a", "b"]
    assert as_list(texts) is texts
