"""A streamed answer (app.http.connection): short ones whole with their length, long ones in
chunks of the same bytes, an error before the first byte answered, one after it a cut
connection; the client leaving stops the work."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from starlette.types import Message

from app.http.connection import FLUSH_BYTES, Stream, StreamBrokenError

pytestmark = pytest.mark.anyio


async def never_leaves() -> Message:
    await asyncio.Event().wait()
    raise AssertionError("unreachable")


async def chunks(*parts: bytes | Exception) -> AsyncIterator[bytes]:
    for part in parts:
        if isinstance(part, Exception):
            raise part
        yield part


async def sent(stream: Stream) -> list[Message]:
    messages: list[Message] = []

    async def send(message: Message) -> None:
        messages.append(message)

    await stream.send(send)
    return messages


async def test_a_short_answer_goes_whole_with_its_length() -> None:
    messages = await sent(Stream(chunks(b"[1", b",2]"), "application/json", never_leaves))
    start, body = messages
    assert (b"content-length", b"5") in start["headers"]
    assert body == {"type": "http.response.body", "body": b"[1,2]"}


async def test_a_long_answer_goes_in_chunks_of_the_same_bytes() -> None:
    parts = [bytes([65 + i % 26]) * 5000 for i in range(60)]
    messages = await sent(Stream(chunks(*parts), "text/plain", never_leaves))
    start, *bodies = messages
    assert not any(name == b"content-length" for name, _ in start["headers"])
    assert b"".join(m["body"] for m in bodies) == b"".join(parts)
    assert [m.get("more_body", False) for m in bodies] == [True] * (len(bodies) - 1) + [False]
    assert all(len(m["body"]) >= FLUSH_BYTES for m in bodies[:-1])


async def test_an_error_before_the_first_byte_is_raised_to_be_answered() -> None:
    stream = Stream(chunks(b"[1", ValueError("no")), "application/json", never_leaves)
    with pytest.raises(ValueError):
        await sent(stream)
    assert not stream.started


async def test_an_error_after_the_first_byte_ends_the_answer() -> None:
    parts = [b"x" * FLUSH_BYTES, ValueError("mid-way")]
    stream = Stream(chunks(*parts), "application/json", never_leaves)
    with pytest.raises(StreamBrokenError, match="mid-way"):
        await sent(stream)
    assert stream.started


async def test_a_client_that_leaves_stops_the_work() -> None:
    left = asyncio.Event()
    closed = asyncio.Event()

    async def leaves() -> Message:
        await left.wait()
        return {"type": "http.disconnect"}

    async def endless() -> AsyncIterator[bytes]:
        try:
            while True:
                yield b"x" * FLUSH_BYTES
                left.set()
                await asyncio.sleep(0)
        finally:
            closed.set()

    messages = await asyncio.wait_for(sent(Stream(endless(), "text/plain", leaves)), 5)
    assert closed.is_set() and messages[0]["type"] == "http.response.start"
