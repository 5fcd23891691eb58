"""The one load tool: wrk through bench/wrk.lua, and the stdlib fallback client."""

from __future__ import annotations

import asyncio
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from bench import load


def test_latency_summary() -> None:
    s = load.summarize([float(v) for v in range(1, 101)])
    assert s["count"] == 100 and s["p50"] == pytest.approx(50.5) and s["max"] == 100
    assert s["p99"] == pytest.approx(99.01)
    assert load.summarize([])["p99"] is None


def test_connection_reads_sized_and_chunked_responses() -> None:
    """The load client's HTTP/1.1: Content-Length and chunked bodies on one kept-alive socket,
    then a reconnect after `Connection: close`."""
    replies = [
        b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nhello",
        b"HTTP/1.1 422 Unprocessable\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n",
        b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok",
        b"HTTP/1.1 201 Created\r\ncontent-length: 0\r\n\r\n",
    ]
    bodies: list[bytes] = []
    connections = 0

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal connections
        connections += 1
        while replies and (head := await reader.readuntil(b"\r\n\r\n")):
            length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
            bodies.append(await reader.readexactly(length))
            reply = replies.pop(0)
            writer.write(reply)
            if b"close" in reply:
                break
        writer.close()

    async def run() -> list[int]:
        server = await asyncio.start_server(handle, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        conn = load.Connection(f"http://127.0.0.1:{port}/tag")
        statuses = [await conn.post(b'{"inputs": "%d"}' % i) for i in range(4)]
        conn.close()
        server.close()
        return statuses

    assert asyncio.run(run()) == [200, 422, 200, 201]
    assert bodies == [b'{"inputs": "%d"}' % i for i in range(4)] and connections == 2


def test_load_sends_lists_and_counts_sentences() -> None:
    """Lists of K consecutive texts per body (a short last group left out), sent in order."""
    bodies: list[dict[str, Any]] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while head := await reader.readuntil(b"\r\n\r\n"):
            length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
            bodies.append(json.loads(await reader.readexactly(length)))
            writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}")

    async def run() -> dict[str, Any]:
        server = await asyncio.start_server(handle, "127.0.0.1", 0)
        url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}/embed"
        bodies = load.make_bodies(["a", "b", "c", "d", "e"], per_request=2)
        result = await load.run_fallback(url, bodies, 1, 0.0, 0.3)
        server.close()
        return result

    result = asyncio.run(run())
    assert bodies[:3] == [{"inputs": ["a", "b"]}, {"inputs": ["c", "d"]}, {"inputs": ["a", "b"]}]
    assert result["ok"] > 3 and result["distinct_bodies"] == 2 and result["tool"] == "python"


class _Answers(BaseHTTPRequestHandler):
    """200 to every POST but those whose input is "x" (429); keeps each input in `received`."""

    protocol_version = "HTTP/1.1"
    received: list[str] = []

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.received.append(body["inputs"])
        status = b"429 Too Many Requests" if body["inputs"] == "x" else b"200 OK"
        self.wfile.write(b"HTTP/1.1 %s\r\nContent-Length: 2\r\n\r\n{}" % status)  # one write

    def log_message(self, *args: Any) -> None:
        pass


@pytest.mark.slow  # wrk
@pytest.mark.skipif(not load.wrk_available(), reason="wrk is not installed")
def test_wrk_sends_bodies_in_order_and_counts_errors(tmp_path: Path) -> None:
    """A real one-second wrk run with bench/wrk.lua: bodies in file order from the offset,
    cycling; 429s are errors; the rates are wrk's own."""
    bodies = tmp_path / "bodies"
    bodies.write_bytes(b"\n".join(load.make_bodies(["a", "b", "x"], 1)) + b"\n")
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Answers)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    _Answers.received = []
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/tag"
        r = load.run_wrk(url, bodies, clients=1, seconds=1, offset=1)
    finally:
        server.shutdown()
        server.server_close()
    assert _Answers.received[:4] == ["b", "x", "a", "b"]
    assert r["distinct_bodies"] == 3 and r["requests_sent"] >= len(_Answers.received) > 10
    rejected = r["statuses"]["429"]
    assert r["errors"] == rejected > 0 and r["ok"] + rejected == r["latency_ms"]["count"]
    assert r["requests_per_s"] == pytest.approx(r["ok"] / r["window_s"])
    assert 0 < r["latency_ms"]["p50"] <= r["latency_ms"]["p99"] <= r["latency_ms"]["max"]
    assert r["tool"] == "wrk" and r["client_cpu_s"] >= 0


def test_wrk_parse_of_captured_output() -> None:
    out = (
        "Running 2s test @ http://127.0.0.1:8000/tag\n  1 threads and 4 connections\n"
        'bench-wrk {"duration_us": 2000000, "requests": 98, "sent": 102, "distinct": 50, '
        '"statuses": {"200": 90, "503": 8}, "socket_errors": {"connect": 0, "read": 2, '
        '"write": 0, "timeout": 1}, "latency_us": {"mean": 4100.5, "max": 30000, "p50": 3000, '
        '"p90": 6000, "p95": 8000, "p99": 12500}}\nRequests/sec: 49.00\n'
    )
    r = load.parse_wrk(out)
    assert r["statuses"] == {"200": 90, "503": 8, "socket read": 2, "socket timeout": 1}
    assert (r["ok"], r["errors"], r["requests_per_s"], r["window_s"]) == (90, 11, 45.0, 2.0)
    assert r["latency_ms"]["p99"] == 12.5 and r["latency_ms"]["count"] == 98
    with pytest.raises(RuntimeError, match="bench-wrk"):
        load.parse_wrk("Running 2s test\n")
