"""The edge on a small ASGI app of its own: ids, the body limit, metrics, the log line and
the 500 for an unexpected exception, for every request."""

from __future__ import annotations

import logging
import re

import httpx
import pytest
from starlette.datastructures import State
from starlette.types import Receive, Scope, Send

from app.core.admission import MemoryBudget
from app.http.edge import Edge
from app.metrics import Metrics

pytestmark = pytest.mark.anyio
LIMIT = 1000


async def echo(scope: Scope, receive: Receive, send: Send) -> None:
    """Answers with the length of the body it read; /boom and /v1/boom raise."""
    if scope["path"].endswith("/boom"):
        raise RuntimeError("boom")
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body", False):
            break
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": str(len(body)).encode()})


@pytest.fixture
def edge() -> Edge:
    return Edge(echo, Metrics(), LIMIT, State(), MemoryBudget(timeout=5))


def client(app: Edge) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    return httpx.AsyncClient(transport=transport, base_url="http://test")


async def test_every_response_has_a_request_id_unique_to_it(edge: Edge) -> None:
    async with client(edge) as c:
        ids = [(await c.post("/tag", content=b"x")).headers["x-request-id"] for _ in range(50)]
        given = await c.post("/tag", content=b"x", headers={"X-Request-ID": "trace.7:a-b"})
        insane = await c.post("/tag", content=b"x", headers={"X-Request-ID": "no spaces"})
    assert len(set(ids)) == 50
    assert all(re.fullmatch(r"[0-9a-f]{16}-[0-9a-f]+", i) for i in ids)
    assert len({i.split("-")[0] for i in ids}) == 1  # one process, one prefix
    assert given.headers["x-request-id"] == "trace.7:a-b"
    assert insane.headers["x-request-id"] not in ("no spaces", "")


async def test_the_body_limit_holds_declared_and_chunked_bodies(edge: Edge) -> None:
    async def chunks(n: int):
        for _ in range(n):
            yield b"x" * 100

    async with client(edge) as c:
        assert (await c.post("/embed", content=b"x" * LIMIT)).text == str(LIMIT)
        declared = await c.post("/embed", content=b"x" * (LIMIT + 1))
        chunked_ok = await c.post("/embed", content=chunks(10))
        chunked_over = await c.post("/embed", content=chunks(11))
    assert declared.status_code == 413 and declared.json()["error_type"] == "too_large"
    assert chunked_ok.text == "1000"
    assert chunked_over.status_code == 413


async def test_metrics_and_one_log_line_per_request(
    edge: Edge, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="app.http.edge")
    async with client(edge) as c:
        for _ in range(3):
            await c.post("/tag", content=b"{}")
        await c.get("/elsewhere")
    sample = edge.metrics.registry.get_sample_value
    tag, other = {"route": "/tag", "model": ""}, {"route": "other", "model": ""}
    assert sample("bigru_requests_total", {**tag, "status": "200"}) == 3
    assert sample("bigru_requests_total", {**other, "status": "200"}) == 1
    assert sample("bigru_request_seconds_count", tag) == 3
    lines = [r.getMessage() for r in caplog.records if r.name == "app.http.edge"]
    assert [line.split()[:3] for line in lines] == [["POST", "/tag", "200"]] * 3 + [
        ["GET", "/elsewhere", "200"]
    ]


async def test_an_unexpected_exception_is_a_logged_500_with_the_id(
    edge: Edge, caplog: pytest.LogCaptureFixture
) -> None:
    async with client(edge) as c:
        r = await c.get("/boom", headers={"X-Request-ID": "r-1"})
    assert r.status_code == 500
    assert r.json() == {"error": "internal error, request id r-1", "error_type": "internal"}
    assert any(r.levelno == logging.ERROR and r.exc_info for r in caplog.records)


async def test_the_edge_writes_errors_in_the_shape_of_the_path(edge: Edge) -> None:
    async def chunks(n: int):
        for _ in range(n):
            yield b"x" * 100

    async with client(edge) as c:
        boom = await c.get("/v1/boom", headers={"X-Request-ID": "r-2"})
        big = await c.post("/v1/embeddings", content=chunks(11))
    assert boom.status_code == 500 and boom.json()["error"] == {
        "message": "internal error, request id r-2",
        "type": "server_error",
        "param": None,
        "code": "internal",
    }
    assert big.status_code == 413 and big.json()["error"]["code"] == "too_large"
