"""The two checks a request passes before its handler, whichever way it comes in: the API key
and readiness. The dispatcher (POST routes) calls them itself; the FastAPI app (GET routes) reads
them as dependencies, and its OpenAPI document the key's security scheme."""

from __future__ import annotations

import secrets
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPBearer

from app.core.errors import NotReadyError
from app.core.models import Models
from app.http.errors import UnauthorizedError

_UNAUTHORIZED = "missing or wrong API key (Authorization: Bearer <key>)"


def authorize(api_key: str | None, authorization: str | None) -> None:
    """The API key check: `authorization` is the request's first Authorization header."""
    if api_key is None:
        return
    scheme, _, credentials = (authorization or "").partition(" ")
    given = credentials.strip() if scheme.lower() == "bearer" else ""
    # constant time: the comparison does not tell how much of a guess was right
    if not secrets.compare_digest(given.encode(), api_key.encode()):
        raise UnauthorizedError(_UNAUTHORIZED)


def ready(models: Models | None) -> Models:
    """The readiness check: the models once every one is loaded and warmed up."""
    if models is None:
        raise NotReadyError("the model is not loaded yet")
    return models


# Read by the OpenAPI document for its security scheme; `authorize` checks the header.
_bearer = HTTPBearer(auto_error=False, description="needed only when BIGRU_API_KEY is set")


async def authorized(request: Request, _: Annotated[object, Depends(_bearer)]) -> None:
    """The FastAPI routes' auth dependency."""
    authorize(request.app.state.settings.api_key, request.headers.get("authorization"))


# Async: FastAPI runs a sync dependency on a worker thread, a thread hop per request.
async def _models(request: Request) -> Models:
    return ready(request.app.state.models)


ModelsDep = Annotated[Models, Depends(_models)]
