"""OpenAI's error shape on the /v1/* routes: `{"error": {"message", "type", "param", "code"}}`.

The OpenAI SDK reads that shape (its exception's message, `.type`, `.code`); from ours it shows
only the status. Every error body is written in our shape wherever it arises (a handler, the
body limit, the gateway's 500); the gateway (app/gateway.py) rewrites the /v1/ ones at the one
edge they all pass. `code` carries our `error_type`; `param` is null.
"""

from __future__ import annotations

from typing import Any

import orjson
from starlette.types import Message, Send

from app.schemas import OpenAIErrorResponse

PREFIX = "/v1/"


def openai_errors(responses: dict[int | str, dict[str, Any]]) -> dict[int | str, dict[str, Any]]:
    """The OpenAPI `responses` of a /v1/ route: the same statuses, OpenAI's error body."""
    return {code: {**doc, "model": OpenAIErrorResponse} for code, doc in responses.items()}


def _type(status: int) -> str:
    """OpenAI's `type` for a status."""
    if status == 401:
        return "authentication_error"
    if status == 429:
        return "rate_limit_error"
    return "server_error" if status >= 500 else "invalid_request_error"


def _openai_body(status: int, body: bytes) -> bytes:
    """Our error body as OpenAI's; anything else unchanged."""
    try:
        ours = orjson.loads(body)
    except orjson.JSONDecodeError:
        return body
    if not isinstance(ours, dict) or set(ours) != {"error", "error_type"}:
        return body
    error = {
        "message": ours["error"],
        "type": _type(status),
        "param": None,
        "code": ours["error_type"],
    }
    return orjson.dumps({"error": error})


def rewrite_errors(send: Send) -> Send:
    """`send` for a /v1/ request: error responses in OpenAI's shape, successes untouched."""
    start: Message | None = None
    chunks: list[bytes] = []

    async def rewrite(message: Message) -> None:
        nonlocal start
        if message["type"] == "http.response.start" and message["status"] >= 400:
            start = message  # held until the whole body is in
            return
        if start is None or message["type"] != "http.response.body":
            await send(message)
            return
        chunks.append(message.get("body", b""))
        if message.get("more_body", False):
            return
        body = _openai_body(start["status"], b"".join(chunks))
        headers = [h for h in start.get("headers", []) if h[0].lower() != b"content-length"]
        headers.append((b"content-length", str(len(body)).encode()))
        await send({**start, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    return rewrite
