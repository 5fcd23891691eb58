"""app.core.errors: each domain error carries its own `error_type` and nothing of HTTP (the map
to statuses is app/http/errors.py's)."""

from __future__ import annotations

import inspect

import pytest

from app.core import errors
from app.core.errors import EmptyInputError, InvalidInputError, ServiceError

DOMAIN_ERRORS = [
    cls
    for _, cls in inspect.getmembers(errors, inspect.isclass)
    if issubclass(cls, Exception) and cls.__module__ == errors.__name__
]


def test_every_error_is_a_service_error_with_a_type_of_its_own() -> None:
    assert len(DOMAIN_ERRORS) >= 8
    assert all(issubclass(cls, ServiceError) for cls in DOMAIN_ERRORS)
    types = [cls.error_type for cls in DOMAIN_ERRORS]
    assert len(set(types)) == len(types), types
    assert all(t.isidentifier() and t.islower() for t in types), types
    assert ServiceError.error_type == "internal"  # what an error of no known kind is


@pytest.mark.parametrize("cls", DOMAIN_ERRORS, ids=lambda cls: cls.__name__)
def test_an_error_is_its_message_and_its_type_and_knows_no_status(cls: type[ServiceError]) -> None:
    error = cls("3 inputs; at most 2")
    assert str(error) == "3 inputs; at most 2" and error.error_type == cls.error_type
    assert vars(error) == {}  # nothing set per error beyond its message
    http_words = ("status", "code", "header", "http", "retry")
    assert not [n for n in dir(cls) if any(w in n.lower() for w in http_words)]


def test_an_empty_input_is_an_invalid_input() -> None:
    with pytest.raises(InvalidInputError) as caught:
        raise EmptyInputError("input 1 is empty")
    assert caught.value.error_type == "empty_input"
