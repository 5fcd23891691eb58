"""OneWriteProtocol: a response's header goes out with its first body chunk, in one write; over
TCP under a real uvicorn (in a thread) it is otherwise uvicorn's HTTP."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest
import uvicorn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from app.http.protocol import CONTINUE, OneWriteProtocol, _OneWriteTransport
from tests.helpers import free_port

HEADER_DELAY = 0.4  # seconds the /late app waits between the header and the body


class FakeTransport:
    def __init__(self) -> None:
        self.writes: list[bytes] = []
        self.closed = False

    def write(self, data: bytes) -> None:
        self.writes.append(bytes(data))

    def close(self) -> None:
        self.closed = True

    def is_closing(self) -> bool:
        return self.closed


def test_the_header_is_held_for_the_next_write() -> None:
    fake = FakeTransport()
    t = _OneWriteTransport(fake)  # type: ignore[arg-type]
    t.write(CONTINUE)  # before the response: passes at once
    t.write(b"HTTP/1.1 200 OK\r\n\r\n")
    assert fake.writes == [CONTINUE]
    t.write(memoryview(b"body"))
    t.write(b"more")
    assert fake.writes == [CONTINUE, b"HTTP/1.1 200 OK\r\n\r\nbody", b"more"]
    assert not t.is_closing()  # the rest is the transport's


def test_close_sends_a_held_header_first() -> None:
    """An app that fails after starting its response: the header, then the connection closes,
    as with uvicorn's own protocol."""
    fake = FakeTransport()
    t = _OneWriteTransport(fake)  # type: ignore[arg-type]
    t.write(b"HTTP/1.1 200 OK\r\n\r\n")
    t.close()
    assert fake.writes == [b"HTTP/1.1 200 OK\r\n\r\n"] and fake.closed


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """/late: the header, a pause, the body; /stream: chunked, two chunks; /fail: raises after
    the header; anything else: the request body echoed."""
    if scope["type"] != "http":
        return
    body = b""
    more = True
    while more:
        message = await receive()
        body += message.get("body", b"")
        more = message.get("more_body", False)
    path = scope["path"]
    headers = [(b"content-type", b"text/plain")]
    if path == "/stream":
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": b"one,", "more_body": True})
        await send({"type": "http.response.body", "body": b"two"})
        return
    answer = b"late" if path == "/late" else b"echo:" + body
    headers.append((b"content-length", str(len(answer)).encode()))
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    if path == "/fail":
        raise RuntimeError("after the header")
    if path == "/late":
        await asyncio.sleep(HEADER_DELAY)
    await send({"type": "http.response.body", "body": answer})


@contextmanager
def serving(protocol: type[asyncio.Protocol]) -> Iterator[int]:
    """uvicorn with `protocol` on a free port in a thread, until the block ends: its port."""
    port = free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, http=protocol, log_level="critical")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "uvicorn did not start"
        time.sleep(0.01)
    try:
        yield port
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def first_bytes(port: int, request: bytes, within: float) -> bytes:
    """What arrives within `within` seconds of sending `request` on a new connection."""
    with socket.create_connection(("127.0.0.1", port)) as s:
        s.sendall(request)
        s.settimeout(within)
        try:
            return s.recv(65536)
        except TimeoutError:
            return b""


LATE = b"GET /late HTTP/1.1\r\nhost: x\r\n\r\n"


@pytest.mark.parametrize("protocol, early", [(HttpToolsProtocol, True), (OneWriteProtocol, False)])
def test_no_header_goes_out_before_its_body(protocol: type[asyncio.Protocol], early: bool) -> None:
    """uvicorn's own protocol sends the header while the app still works on the body; this one
    sends nothing until both can go together."""
    with serving(protocol) as port:
        got = first_bytes(port, LATE, within=HEADER_DELAY / 2)
        assert got.startswith(b"HTTP/1.1 200 OK") == early, got
        whole = first_bytes(port, LATE, within=HEADER_DELAY * 10)
    if not early:
        assert whole.startswith(b"HTTP/1.1 200 OK") and whole.endswith(b"\r\n\r\nlate"), whole


def test_it_is_otherwise_uvicorns_http() -> None:
    with serving(OneWriteProtocol) as port, httpx.Client(base_url=f"http://127.0.0.1:{port}") as c:
        for i in range(3):  # one kept-alive connection
            r = c.post("/", content=f"n{i}")
            assert (r.status_code, r.text) == (200, f"echo:n{i}")
        assert c.head("/").content == b"" and c.head("/").headers["content-length"] == "5"
        r = c.get("/stream")
        assert (r.text, r.headers["transfer-encoding"]) == ("one,two", "chunked")
        r = c.post("/", content=b"x" * 100, headers={"expect": "100-continue"})
        assert r.text == "echo:" + "x" * 100
        with pytest.raises(httpx.RemoteProtocolError):  # header sent, then the connection closed
            c.get("/fail")
        assert c.post("/", content="after").text == "echo:after"  # a new connection serves


def test_pipelined_requests_each_get_their_answer() -> None:
    requests = b"".join(
        b"POST / HTTP/1.1\r\nhost: x\r\ncontent-length: 2\r\n\r\nr%d" % i for i in range(3)
    )
    with serving(OneWriteProtocol) as port, socket.create_connection(("127.0.0.1", port)) as s:
        s.sendall(requests)
        s.settimeout(5)
        got = b""
        while got.count(b"echo:") < 3:
            got += s.recv(65536)
    assert [part[:7] for part in got.split(b"echo:")[1:]] == [b"r0HTTP/", b"r1HTTP/", b"r2"]
