"""What a handler's work does with the connection: stop when the client goes, and stream an
answer that may be long.

A `Stream` answer is written as its chunks come. Until `FLUSH_BYTES` of it are ready nothing
is sent, so a short answer goes out whole with its Content-Length, as any other, and an error
found before then (a limit, a full queue) is answered with its status. A longer answer goes out
chunked (HTTP/1.1) or until the connection closes (HTTP/1.0), `FLUSH_BYTES` or more at a write:
the process holds a part of it at a time, and the transport's flow control holds the writer
back while the client is slow to read. An error after the first byte can only end the
connection, so that the client sees a cut answer, never a whole-looking wrong one.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable
from contextlib import aclosing
from dataclasses import dataclass
from typing import TypeVar

from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from app.http.errors import ClientGoneError

T = TypeVar("T")
FLUSH_BYTES = 1 << 16


class StreamBrokenError(RuntimeError):
    """A streamed answer failed after its first byte: the connection is ended, not answered."""


async def while_connected(receive: Receive, work: Awaitable[T]) -> T:
    """Await `work` in this task, cancelling it if the client disconnects first: its queued
    sentences are then skipped by the batcher instead of being run for nobody. The request body
    has been read, so the next message `receive` gives is the disconnect."""
    task = asyncio.current_task()
    assert task is not None
    watcher = asyncio.ensure_future(receive())
    finished = False

    def gone(_: object) -> None:
        if not finished and not watcher.cancelled():
            task.cancel()

    watcher.add_done_callback(gone)
    try:
        return await work
    except asyncio.CancelledError:
        if watcher.done() and not watcher.cancelled():
            task.uncancel()
            raise ClientGoneError("the client disconnected") from None
        raise
    finally:
        finished = True
        watcher.cancel()


@dataclass
class Stream:
    """An answer of any length: its chunks, made as they are written, and its media type."""

    chunks: AsyncIterator[bytes]
    media_type: str
    receive: Receive  # the request's, to notice the client leave
    started: bool = False

    async def send(self, send: Send) -> None:
        try:
            await while_connected(self.receive, self._send(send))
        except ClientGoneError:
            if not self.started:
                raise
        except Exception as e:
            if not self.started:
                raise
            raise StreamBrokenError(f"the answer failed after it began: {e!r}") from e

    async def _send(self, send: Send) -> None:
        async with aclosing(self.chunks) as chunks:
            held = bytearray()
            async for chunk in chunks:
                held += chunk
                if len(held) >= FLUSH_BYTES:
                    break
            else:  # all of it: one write with its length
                await self._start(send, [(b"content-length", str(len(held)).encode())])
                await send({"type": "http.response.body", "body": bytes(held)})
                return
            await self._start(send, [])
            more = {"type": "http.response.body", "more_body": True}
            await send({**more, "body": bytes(held)})
            held = bytearray()
            async for chunk in chunks:
                held += chunk
                if len(held) >= FLUSH_BYTES:
                    await send({**more, "body": bytes(held)})
                    held = bytearray()
            await send({"type": "http.response.body", "body": bytes(held)})

    async def _start(self, send: Send, length: list[tuple[bytes, bytes]]) -> None:
        self.started = True
        headers = [(b"content-type", self.media_type.encode()), *length]
        await send({"type": "http.response.start", "status": 200, "headers": headers})


class StreamResponse(Response):
    """A `Stream` as the documented routes return it."""

    def __init__(self, stream: Stream) -> None:
        self.stream = stream
        self.background = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.stream.send(send)
