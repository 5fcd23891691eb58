"""app.model.errors: what the model layer raises is its own, plain exceptions that know nothing
of the service above it (the batcher turns a `RunError` into the core's `BackendError`)."""

from __future__ import annotations

import pytest

from app.core.errors import ServiceError
from app.model.errors import ModelLoadError, RunError


@pytest.mark.parametrize("cls", [ModelLoadError, RunError])
def test_model_errors_are_plain_exceptions_of_the_model_layer(cls: type[Exception]) -> None:
    assert issubclass(cls, Exception) and not issubclass(cls, ServiceError)
    error = cls("model.json: CRF shapes do not match")
    assert str(error) == "model.json: CRF shapes do not match"
    assert not hasattr(error, "error_type") and vars(error) == {}
