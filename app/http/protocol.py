"""uvicorn's httptools protocol, except that a response's status line and headers go out in the
same socket write as its first body chunk.

uvicorn writes `http.response.start` as soon as the app sends it, then each body chunk: two
writes (two send syscalls) per response, and a replica killed between them leaves its client a
header without a body. Here each request's cycle writes through a `_OneWriteTransport`, which
holds the header block until the next write and sends both joined (or the header alone when the
response completes without a body write, as for HEAD). A streamed response's header waits for
its first chunk. `python -m app` selects this class (app.main); the rest is uvicorn's own.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"  # written before the response: never held


class _OneWriteTransport:
    """A connection's transport for one request's cycle: the cycle's first write other than
    100 Continue, which uvicorn's cycle always makes its header block, is held and joined to its
    next write; close() first sends what is held. Everything else is the transport's."""

    def __init__(self, transport: asyncio.Transport) -> None:
        self._transport = transport
        self._held: bytes | None = None
        self._header_seen = False

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if not self._header_seen and data != CONTINUE:
            self._header_seen = True
            self._held = bytes(data)
            return
        if self._held is not None:
            data, self._held = self._held + data, None
        self._transport.write(data)

    def close(self) -> None:
        self.flush()
        self._transport.close()

    def flush(self) -> None:
        if self._held is not None:
            held, self._held = self._held, None
            self._transport.write(held)

    def __getattr__(self, name: str) -> Any:  # is_closing, get_extra_info, ...
        return getattr(self._transport, name)


class OneWriteProtocol(HttpToolsProtocol):
    """HttpToolsProtocol whose request cycles write a response's header with its body."""

    def on_headers_complete(self) -> None:
        before = self.cycle
        super().on_headers_complete()
        cycle = self.cycle
        # A new cycle, unless the request was an upgrade; its task has not run yet (tasks start
        # on the loop's next turn), so the cycle has written nothing.
        if cycle is not before and cycle is not None and not cycle.response_started:
            transport = _OneWriteTransport(self.transport)
            cycle.transport = transport  # type: ignore[assignment]
            cycle.on_response = _flushing(transport, cycle.on_response)


def _flushing(transport: _OneWriteTransport, on_response: Callable[[], None]) -> Callable[[], None]:
    """The cycle's completion callback, after sending what is held: a response with no body
    write (HEAD: uvicorn writes no body) completes with its header held."""

    def on_complete() -> None:
        transport.flush()
        on_response()

    return on_complete
