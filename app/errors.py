"""Domain errors, the one error_type -> HTTP status table, and the writer of every error body.

Code below the api raises the errors defined here and knows nothing of HTTP; each carries an
`error_type`. Every error response, ours, pydantic's and Starlette's (404, 405), is
`{"error": str, "error_type": str}`.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger(__name__)

RETRY_AFTER_SECONDS = 1


class ServiceError(Exception):
    error_type = "internal"


class InvalidInputError(ServiceError):
    error_type = "invalid_input"


class EmptyInputError(InvalidInputError):
    error_type = "empty_input"


class InputTooLargeError(ServiceError):
    error_type = "too_large"


class UnauthorizedError(ServiceError):
    error_type = "unauthorized"


class ClientGoneError(ServiceError):
    """The client disconnected before its answer was ready; its work was cancelled."""

    error_type = "client_gone"


class OverloadedError(ServiceError):
    error_type = "overloaded"


class NotReadyError(ServiceError):
    error_type = "not_ready"


class BackendError(ServiceError):
    error_type = "backend"


class ModelLoadError(ServiceError):
    """The model directory is missing, corrupt or inconsistent (raised at startup only)."""

    error_type = "model_load"


STATUS = {
    "validation": 422,
    "invalid_input": 422,
    "empty_input": 422,
    "too_large": 413,
    "unauthorized": 401,
    "not_found": 404,
    "method_not_allowed": 405,
    "http": 400,
    "overloaded": 429,
    "client_gone": 499,  # nginx's convention; only the log and the metrics ever see it
    "not_ready": 503,
    "backend": 500,
    "model_load": 500,
    "internal": 500,
}
_HEADERS = {
    "overloaded": {"Retry-After": str(RETRY_AFTER_SECONDS)},
    "unauthorized": {"WWW-Authenticate": "Bearer"},
}
# FastAPI raises a 400 only for a body it cannot decode (not UTF-8): a validation error too.
_HTTP_TYPES = {400: "validation", 404: "not_found", 405: "method_not_allowed", 413: "too_large"}


def error_response(error_type: str, message: str) -> JSONResponse:
    body = {"error": message, "error_type": error_type}
    return JSONResponse(body, STATUS[error_type], headers=_HEADERS.get(error_type))


# Errors about the body as a whole: it is missing, or not a JSON object (wrong content type).
_NOT_AN_OBJECT = {"missing", "model_attributes_type", "dict_type"}


def _validation_message(errors: Iterable[Any], body: Any = None) -> str:
    """`field.0: message; ...`, without the union-member tags pydantic puts in locations."""
    parts: dict[str, None] = {}  # ordered and deduplicated
    for e in errors:
        if e.get("type") == "json_invalid":
            parts[_json_message(e, body)] = None
            continue
        if tuple(e.get("loc", ())) == ("body",) and e.get("type") in _NOT_AN_OBJECT:
            parts["the body must be a JSON object, sent as Content-Type: application/json"] = None
            continue
        loc = ".".join(str(p) for p in e.get("loc", ()) if p != "body" and "[" not in str(p))
        msg = str(e.get("msg", "invalid")).removeprefix("Value error, ")
        parts[f"{loc}: {msg}" if loc else msg] = None
    return "; ".join(parts) or "invalid request"


def _json_message(error: Any, body: Any) -> str:
    """What stopped the body parsing as JSON, and where: FastAPI gives the character offset
    (the error's last location) and the text, from which the line and column follow."""
    reason = str(error.get("ctx", {}).get("error") or error.get("msg", "invalid"))
    pos = tuple(error.get("loc", ()))[-1:]
    if not (pos and isinstance(pos[0], int) and isinstance(body, str)):
        return f"the body is not valid JSON: {reason}"
    at = pos[0]
    line, column = body.count("\n", 0, at) + 1, at - body.rfind("\n", 0, at)
    return f"the body is not valid JSON: {reason} at line {line}, column {column} (character {at})"


async def _on_service_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ServiceError)
    if STATUS[exc.error_type] >= 500:
        log.error("%s: %s", exc.error_type, exc)
    return error_response(exc.error_type, str(exc) or exc.error_type)


async def _on_validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    return error_response("validation", _validation_message(exc.errors(), exc.body))


async def _on_http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, HTTPException)
    error_type = _HTTP_TYPES.get(exc.status_code)
    if error_type is None:  # a rarer 4xx of Starlette's: keep its code
        response = error_response("http", str(exc.detail))
        response.status_code = exc.status_code
        return response
    return error_response(error_type, str(exc.detail))


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(ServiceError, _on_service_error)
    app.add_exception_handler(RequestValidationError, _on_validation_error)
    app.add_exception_handler(HTTPException, _on_http_error)


class BodyLimitMiddleware:
    """413 for a body over `max_bytes`, before anything parses it.

    A declared Content-Length is checked up front; a chunked body is buffered up to the limit.
    """

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None:  # the server holds the body to this length
            if declared.isdigit() and int(declared) > self.max_bytes:
                await self._reject(scope, receive, send)
            else:
                await self.app(scope, receive, send)
            return
        messages: list[Message] = []
        size = 0
        while True:
            message = await receive()
            messages.append(message)
            size += len(message.get("body", b""))
            if size > self.max_bytes:
                await self._reject(scope, receive, send)
                return
            if message["type"] != "http.request" or not message.get("more_body", False):
                break

        async def replay() -> Message:
            return messages.pop(0) if messages else await receive()

        await self.app(scope, replay, send)

    async def _reject(self, scope: Scope, receive: Receive, send: Send) -> None:
        message = f"request body larger than {self.max_bytes} bytes"
        await error_response("too_large", message)(scope, receive, send)
