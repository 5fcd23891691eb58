"""Closed-loop HTTP load: N clients, each sends a request, waits for the answer, sends the next.

A request carries one sentence, or `--per-request K` consecutive ones (as a client that embeds
a list of texts would send them).

Run as its own process (`python -m bench.load --url http://127.0.0.1:PORT/tag ...`) so the
client's CPU time is not the server's; prints one JSON object on stdout. Loopback only, bounded
by time and by request count. Requests finished before the warm-up ends are not counted;
throughput is the requests that finished inside the measured window over its length.

The client is a minimal asyncio HTTP/1.1 keep-alive connection per simulated client (stdlib
only). httpx (`--tool httpx`) is kept to cross-check: on a 2-core machine it spends 2-20 ms of
CPU per request, more with more connections, and becomes the bottleneck it was meant to measure.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import resource
import sys
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import numpy as np

LOOPBACK = {"127.0.0.1", "localhost", "::1"}
QUANTILES = {"p50": 50, "p90": 90, "p95": 95, "p99": 99}


def summarize(latencies_ms: list[float]) -> dict[str, float | int | None]:
    """Count, mean, max and p50/p90/p95/p99 (linear interpolation) of latencies in ms."""
    if not latencies_ms:
        return {"count": 0, "mean": None, "max": None, **{k: None for k in QUANTILES}}
    values = np.asarray(latencies_ms, dtype=np.float64)
    out: dict[str, float | int | None] = {
        "count": len(values),
        "mean": float(values.mean()),
        "max": float(values.max()),
    }
    for name, q in QUANTILES.items():
        out[name] = float(np.percentile(values, q))
    return out


class Connection:
    """One keep-alive HTTP/1.1 connection that POSTs JSON bodies: the whole client side of a
    request is a write and a few reads, a tenth of a millisecond of CPU where httpx takes
    milliseconds (and more per request the more connections its pool holds)."""

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 80
        self.head = (
            f"POST {parts.path or '/'} HTTP/1.1\r\nHost: {parts.netloc}\r\n"
            "Content-Type: application/json\r\nContent-Length: "
        ).encode()
        self.streams: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None

    async def post(self, body: bytes) -> int:
        """Send one request and read its whole response; returns the status code."""
        if self.streams is None:
            self.streams = await asyncio.open_connection(self.host, self.port)
        reader, writer = self.streams
        writer.write(self.head + b"%d\r\n\r\n" % len(body) + body)
        status_line = await reader.readline()
        if not status_line:
            raise ConnectionResetError("the server closed the connection")
        headers = {}
        while (line := await reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.partition(b":")
            headers[name.strip().lower()] = value.strip().lower()
        if headers.get(b"transfer-encoding") == b"chunked":
            while size := int((await reader.readline()).split(b";")[0], 16):
                await reader.readexactly(size + 2)
            await reader.readline()
        else:
            await reader.readexactly(int(headers.get(b"content-length", b"0")))
        if headers.get(b"connection") == b"close":
            self.close()
        return int(status_line.split()[1])

    def close(self) -> None:
        if self.streams is not None:
            self.streams[1].close()
            self.streams = None


def make_bodies(texts: list[str], per_request: int) -> list[bytes]:
    """JSON request bodies: one text each, or `per_request` consecutive texts each (a short
    last group is left out, so every request carries exactly `per_request`)."""
    if per_request == 1:
        return [json.dumps({"inputs": t}).encode() for t in texts]
    groups = [texts[i : i + per_request] for i in range(0, len(texts), per_request)]
    return [json.dumps({"inputs": g}).encode() for g in groups if len(g) == per_request]


async def run_load(
    url: str,
    texts: list[str],
    clients: int,
    warmup: float,
    seconds: float,
    max_requests: int,
    tool: str,
    per_request: int = 1,
) -> dict[str, Any]:
    bodies = make_bodies(texts, per_request)  # outside the timed loop
    source = itertools.cycle(bodies)  # shared: the same order whatever the client count
    latencies: list[float] = []
    statuses: Counter[str] = Counter()
    sent = 0
    cpu0 = _cpu_seconds()  # the load loop's own CPU, not the interpreter's start-up and imports
    start = time.perf_counter()
    window = (start + warmup, start + warmup + seconds)

    async def client(post: Callable[[bytes], Awaitable[int]], reset: Callable[[], None]) -> None:
        nonlocal sent
        while time.perf_counter() < window[1] and sent < max_requests:
            sent += 1
            t0 = time.perf_counter()
            try:
                status = str(await post(next(source)))
            except (OSError, EOFError, ValueError) as e:  # reset, refused, a garbled response
                status = type(e).__name__
                reset()
            t1 = time.perf_counter()
            if window[0] <= t1 <= window[1]:
                statuses[status] += 1
                if status == "200":
                    latencies.append((t1 - t0) * 1000)

    if tool == "httpx":
        import httpx

        limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
        headers = {"content-type": "application/json"}
        async with httpx.AsyncClient(limits=limits, timeout=60.0, trust_env=False) as http:

            async def post(body: bytes) -> int:
                try:
                    return (await http.post(url, content=body, headers=headers)).status_code
                except httpx.HTTPError as e:
                    raise OSError(str(e)) from e

            await asyncio.gather(*(client(post, lambda: None) for _ in range(clients)))
    else:
        connections = [Connection(url) for _ in range(clients)]  # one each: N clients, N sockets
        await asyncio.gather(*(client(c.post, c.close) for c in connections))
        for c in connections:
            c.close()
    wall = time.perf_counter() - start
    ok = statuses.get("200", 0)
    return {
        "url": url,
        "tool": tool,
        "clients": clients,
        "per_request": per_request,
        "warmup_s": warmup,
        "window_s": seconds,
        "wall_s": wall,
        "requests_sent": sent,
        "distinct_bodies": len(bodies),
        "statuses": dict(statuses),
        "ok": ok,
        "errors": sum(statuses.values()) - ok,
        "requests_per_s": ok / seconds,
        "sentences_per_s": ok * per_request / seconds,
        "latency_ms": summarize(latencies),
        "client_cpu_s": _cpu_seconds() - cpu0,
    }


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--url", required=True, help="e.g. http://127.0.0.1:8000/tag")
    p.add_argument("--texts", type=Path, required=True, help="JSON list of sentences")
    p.add_argument("--clients", type=int, required=True)
    p.add_argument("--warmup", type=float, default=1.0, help="seconds not counted")
    p.add_argument("--seconds", type=float, default=6.0, help="measured window")
    p.add_argument("--max-requests", type=int, default=200_000)
    p.add_argument("--tool", choices=["raw", "httpx"], default="raw", help="HTTP client")
    p.add_argument("--per-request", type=int, default=1, help="sentences in each request")
    args = p.parse_args(argv)
    if urlsplit(args.url).hostname not in LOOPBACK:
        sys.exit(f"bench.load: {args.url} is not a loopback address")
    texts = json.loads(args.texts.read_text(encoding="utf-8"))
    result = asyncio.run(
        run_load(
            args.url,
            texts,
            args.clients,
            args.warmup,
            args.seconds,
            args.max_requests,
            args.tool,
            args.per_request,
        )
    )
    json.dump(result, sys.stdout)


if __name__ == "__main__":
    main()
