"""The one map from domain errors to HTTP, the writer of every error body, and its schema.

Every error answer, ours, pydantic's and Starlette's (404, 405), has the status of its
`error_type` and the error shape of its path's API: `{"error": str, "error_type": str}`, or
OpenAI's under /v1/ (app/http/openai.py). It is written once, in that shape, where the answer
is written: by the dispatcher (the POST routes), by the FastAPI app's handlers (the GET routes,
404 and 405) or by the edge (the body limit, memory, a 500). The errors only HTTP can raise
(a wrong API key, a malformed body, a client that hung up) are defined here too.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from typing import Any

import orjson
from fastapi import FastAPI, Request
from pydantic import BaseModel
from starlette.exceptions import HTTPException
from starlette.responses import Response

from app.core.errors import ServiceError
from app.http import openai

log = logging.getLogger(__name__)

RETRY_AFTER_SECONDS = 1

STATUS = {
    "validation": 422,
    "invalid_input": 422,
    "empty_input": 422,
    "too_large": 413,
    "no_sentence_encoder": 400,
    "unauthorized": 401,
    "not_found": 404,
    "model_not_found": 404,
    "method_not_allowed": 405,
    "http": 400,
    "overloaded": 429,
    "client_gone": 499,  # nginx's convention; only the log and the metrics ever see it
    "not_ready": 503,
    "backend": 500,
    "internal": 500,
}
_HEADERS = {
    "overloaded": {"Retry-After": str(RETRY_AFTER_SECONDS)},
    "unauthorized": {"WWW-Authenticate": "Bearer"},
}
_HTTP_TYPES = {404: "not_found", 405: "method_not_allowed"}  # Starlette's, from its routing
# Errors about the body as a whole: it is missing, or not a JSON object.
_NOT_AN_OBJECT = {"missing", "model_attributes_type", "dict_type", "model_type"}
_PYDANTIC_WHERE = re.compile(r" at line (\d+) column (\d+)$")
NOT_AN_OBJECT = "the body must be a JSON object, sent as Content-Type: application/json"

# What each error status means, for the OpenAPI document; every one has the ErrorResponse body.
_DOCS: dict[int, dict[str, Any]] = {
    400: {"description": "the model has no sentence encoder (`no_sentence_encoder`): a tagger"},
    401: {
        "description": "missing or wrong API key (only when the server has one)",
        "headers": {"WWW-Authenticate": {"schema": {"type": "string"}}},
    },
    404: {"description": "no model of that name (`model_not_found`); the message lists them"},
    413: {
        "description": "over a limit: inputs, characters, words or pieces, body size, or more "
        "sentences than the queue holds"
    },
    422: {"description": "malformed body, or nothing to embed (`empty_input`)"},
    429: {
        "description": "the queue is full; answered at once",
        "headers": {
            "Retry-After": {
                "description": "seconds to wait before retrying",
                "required": True,
                "schema": {"type": "integer"},
            }
        },
    },
    500: {"description": "inference failed; the log line carries the request id"},
    503: {"description": "the model is not loaded yet"},
}


class UnauthorizedError(ServiceError):
    error_type = "unauthorized"


class MalformedBodyError(ServiceError):
    """The body is not what the route's model accepts (pydantic's message), or not JSON."""

    error_type = "validation"


class ClientGoneError(ServiceError):
    """The client disconnected before its answer was ready; its work was cancelled."""

    error_type = "client_gone"


class ErrorResponse(BaseModel):
    error: str
    error_type: str


def error_docs(*codes: int) -> dict[int | str, dict[str, Any]]:
    """The OpenAPI `responses` of these error statuses."""
    return {code: {"model": ErrorResponse, **_DOCS[code]} for code in codes}


def error_response(path: str, error_type: str, message: str, status: int | None = None) -> Response:
    """The answer to a request for `path` that failed: its body in the shape of the path's API."""
    status = status or STATUS[error_type]
    if path.startswith(openai.PREFIX):
        body = openai.error_body(status, error_type, message)
    else:
        body = orjson.dumps({"error": message, "error_type": error_type})
    return Response(body, status, _HEADERS.get(error_type), "application/json")


def service_error_response(path: str, exc: ServiceError) -> Response:
    """A domain error's answer; a 5xx is logged (with the request id, by the log filter)."""
    if STATUS[exc.error_type] >= 500:
        log.error("%s: %s", exc.error_type, exc)
    return error_response(path, exc.error_type, str(exc) or exc.error_type)


def validation_message(errors: Iterable[Any], fields: Iterable[str]) -> str:
    """`field.0: message; ...` from pydantic's errors for a body of these `fields`, without the
    union-member tags pydantic puts in locations. A field the body does not have is named with
    the ones it does, so a caller who guessed a name (`text` for `inputs`) learns the right one."""
    parts: dict[str, None] = {}  # ordered and deduplicated
    for e in errors:
        if e.get("type") == "json_invalid":
            parts[_json_message(e)] = None
            continue
        loc = tuple(e.get("loc", ()))
        if not loc and e.get("type") in _NOT_AN_OBJECT:
            parts[NOT_AN_OBJECT] = None
            continue
        where = ".".join(str(p) for p in loc if "[" not in str(p))
        msg = str(e.get("msg", "invalid")).removeprefix("Value error, ")
        if e.get("type") == "extra_forbidden" and len(loc) == 1:
            msg += f"; this body's fields are {_names(fields)}"
        parts[f"{where}: {msg}" if where else msg] = None
    return "; ".join(parts) or "invalid request"


def _names(fields: Iterable[str]) -> str:
    """`a`, `b` and `c`."""
    named = [f"`{field}`" for field in fields]
    return f"{', '.join(named[:-1])} and {named[-1]}" if len(named) > 1 else "".join(named)


def _json_message(error: Any) -> str:
    """What stopped the body parsing as JSON, and where: pydantic's parser names the line and
    column in its reason."""
    reason = str(error.get("ctx", {}).get("error") or error.get("msg", "invalid"))
    reason = _PYDANTIC_WHERE.sub(r" at line \1, column \2", reason.removeprefix("Invalid JSON: "))
    return f"the body is not valid JSON: {reason}"


async def _on_service_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ServiceError)
    return service_error_response(request.scope["path"], exc)


async def _on_http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    path = request.scope["path"]
    error_type = _HTTP_TYPES.get(exc.status_code)
    if error_type is None:  # a rarer 4xx of Starlette's: keep its code
        return error_response(path, "http", str(exc.detail), exc.status_code)
    return error_response(path, error_type, str(exc.detail))


def install_error_handlers(app: FastAPI) -> None:
    """The FastAPI app's errors: its guards' (401, 503) and its routing's (404, 405)."""
    app.add_exception_handler(ServiceError, _on_service_error)
    app.add_exception_handler(HTTPException, _on_http_error)
