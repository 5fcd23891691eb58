"""The API key and readiness checks (app/http/guards.py) both ways in call; through the app:
tests/http/test_api.py (every route) and tests/http/test_dispatcher.py."""

from __future__ import annotations

from typing import Any

import pytest

from app.core.errors import NotReadyError
from app.http.errors import UnauthorizedError
from app.http.guards import authorize, ready

WRONG = [None, "", "Bearer", "Bearer nope", "Basic key", "key", "Bearer k", "Bearer keyx"]


@pytest.mark.parametrize("given", WRONG)
def test_a_wrong_or_missing_key_is_refused(given: str | None) -> None:
    with pytest.raises(UnauthorizedError, match="Authorization: Bearer <key>"):
        authorize("key", given)


@pytest.mark.parametrize("given", ["Bearer key", "bearer key", "BEARER  key ", None])
def test_the_key_in_any_case_of_bearer_or_no_key_set(given: str | None) -> None:
    authorize("key" if given else None, given)


def test_ready_is_the_engine_once_loaded() -> None:
    with pytest.raises(NotReadyError):
        ready(None)
    engine: Any = object()
    assert ready(engine) is engine
