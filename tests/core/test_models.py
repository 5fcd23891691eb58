"""The models of a server by name: the default for none, a 404's error for an unknown name."""

from __future__ import annotations

from typing import Any, cast

import pytest

from app.core.engine import Engine
from app.core.errors import ModelNotFoundError
from app.core.models import Models


def test_a_name_gives_its_engine_and_none_the_default() -> None:
    a, b = cast(Engine, object()), cast(Engine, object())
    models = Models({"a": a, "b": b}, "b")
    assert models.get("a") is a and models.get(None) is b and models.names == ["a", "b"]


def test_an_unknown_name_lists_the_names() -> None:
    models = Models({"a": cast(Any, object())}, "a")
    with pytest.raises(ModelNotFoundError, match=r"no model named 'x'; this server has \['a'\]"):
        models.get("x")
