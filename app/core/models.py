"""The models a server holds, each behind its own engine, and the one that answers a request
that names none."""

from __future__ import annotations

import time

from app.core.engine import Engine
from app.core.errors import ModelNotFoundError


class Models:
    def __init__(self, engines: dict[str, Engine], default: str) -> None:
        self.engines = engines  # by name, in the order /info and /v1/models list them
        self.default = engines[default]
        self.loaded_at = int(time.time())  # Unix seconds

    @property
    def names(self) -> list[str]:
        return list(self.engines)

    def get(self, name: str | None) -> Engine:
        """The engine of model `name`; the default's for None."""
        if name is None:
            return self.default
        engine = self.engines.get(name)
        if engine is None:
            raise ModelNotFoundError(f"no model named {name!r}; this server has {self.names}")
        return engine
