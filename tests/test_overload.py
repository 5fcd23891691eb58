"""Overload against the real server (`python -m app` over loopback TCP) with a small queue.

Many concurrent clients offer several times what the queue holds, for a few seconds: nothing
gets a 5xx, every 200 is the answer the sentence gets alone, every 429 comes with Retry-After
within a bound, /health answers throughout, and memory stays bounded. Then many clients hang up
while their sentences are queued: the server skips them and the queue drains to 0.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from statistics import median

import httpx
import pytest

from tests.helpers import Server, metric

pytestmark = [pytest.mark.anyio, pytest.mark.slow]  # load on `python -m app`

MAX_QUEUE = 64  # sentences; small, so that a few dozen clients overflow it
CLIENTS = 48  # concurrent clients, each with one request of INPUTS sentences in flight
INPUTS = 8  # so up to 384 sentences are offered against a queue of 64
SECONDS = 8.0
SENTENCES = [
    "Barack Obama visited Berlin and met Angela Merkel at the Chancellery.",
    "Apple Inc. hired John Smith in New York last year.",
    "I don't think the U.S. office will open on Monday.",
    "Wait!",
]
# one long sentence, given as tokens: no segmenter run, one queued sentence per request
LONG = ("Alice Smith moved from Paris to the Acme offices in Berlin last year , and " * 14).split()
RSS_GROWTH_MB = 300


# One process with one worker: most of a burst then waits in the one queue rather than in runs,
# which the hang-up test needs to see sentences dropped from it; the queue bound and the RSS
# measured are those of that process.
SERVER_ENV = {  # for `server`
    "BIGRU_MAX_QUEUE": str(MAX_QUEUE),
    "BIGRU_PROCESSES": "1",
    "BIGRU_WORKERS": "1",
}


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


def server_seconds(log: Path, request: str) -> list[float]:
    """How long the server took over each request logged as `request` ("POST /tag 429")."""
    messages = (json.loads(line)["message"] for line in log.read_text().splitlines())
    return [
        float(m.split()[-1].removesuffix("ms")) / 1000 for m in messages if m.startswith(request)
    ]


def client(base: str, timeout: float, connections: int = CLIENTS) -> httpx.AsyncClient:
    # Idle connections are dropped well before uvicorn's 5 s keep-alive timeout: reusing one the
    # server is closing at that moment fails the request (a race of HTTP keep-alive itself).
    limits = httpx.Limits(max_connections=connections, keepalive_expiry=1.0)
    return httpx.AsyncClient(base_url=base, timeout=timeout, limits=limits, trust_env=False)


@dataclass
class Tally:
    ok: list[float] = field(default_factory=list)  # seconds to each 200
    wrong: list[str] = field(default_factory=list)
    overloaded: list[float] = field(default_factory=list)  # seconds to each 429
    no_retry_after: int = 0
    other: list[str] = field(default_factory=list)  # any other status, or a transport error
    health: list[tuple[int, float]] = field(default_factory=list)


async def test_overload_is_refused_fast_and_the_rest_is_served_exactly(server: Server) -> None:
    base, pid = server.base, server.proc.pid
    async with client(base, timeout=30) as http:
        alone = {}
        for s in SENTENCES:
            r = await http.post("/tag", json={"inputs": s})
            assert r.status_code == 200
            alone[s] = r.json()[0]
        rss_before = rss_mb(pid)

        tally = Tally()
        deadline = time.monotonic() + SECONDS

        async def load(worker: int) -> None:
            i = worker
            while time.monotonic() < deadline:
                inputs = [SENTENCES[(i + k) % len(SENTENCES)] for k in range(INPUTS)]
                i += 1
                start = time.monotonic()
                try:
                    r = await http.post("/tag", json={"inputs": inputs})
                except httpx.HTTPError as e:
                    tally.other.append(repr(e))
                    continue
                if r.status_code == 200:
                    tally.ok.append(time.monotonic() - start)
                    if r.json() != [alone[s] for s in inputs]:
                        tally.wrong.append(r.text[:200])
                elif r.status_code == 429:
                    tally.overloaded.append(time.monotonic() - start)
                    assert r.json()["error_type"] == "overloaded"
                    retry_after = r.headers.get("retry-after", "")
                    tally.no_retry_after += not (retry_after.isdigit() and int(retry_after) >= 1)
                else:
                    tally.other.append(f"{r.status_code} {r.text[:200]}")

        async def watch_health() -> None:
            async with client(base, timeout=5) as probe:
                while time.monotonic() < deadline:
                    start = time.monotonic()
                    try:
                        status = (await probe.get("/health")).status_code
                    except httpx.HTTPError:
                        status = 0
                    tally.health.append((status, time.monotonic() - start))
                    await asyncio.sleep(0.1)

        await asyncio.gather(watch_health(), *(load(w) for w in range(CLIENTS)))
        rss_after = rss_mb(pid)

        assert not tally.other, tally.other[:5]  # no 5xx, no dropped connection
        assert not tally.wrong, tally.wrong[:2]
        assert tally.ok and tally.overloaded, (len(tally.ok), len(tally.overloaded))
        assert tally.no_retry_after == 0
        # A 429 never waits for the model: tests/core/test_engine.py shows it with the model
        # held. Here, under real load, the server's own timing (its log line per request) only
        # bounds it: the event loop serves the 429s and the 200s alike, so when it is the
        # bottleneck the two medians meet, and no ratio of them holds on a busy machine.
        refused = server_seconds(server.log, "POST /tag 429")
        served = server_seconds(server.log, "POST /tag 200")
        assert max(refused) < 2 and max(tally.overloaded) < 10, max(tally.overloaded)
        assert len(tally.health) >= SECONDS / 0.1 / 4
        assert all(status == 200 for status, _ in tally.health), tally.health  # none timed out
        assert rss_after - rss_before < RSS_GROWTH_MB, (rss_before, rss_after)
        print(
            f"\n{len(tally.ok)} x 200 (median {median(tally.ok) * 1000:.0f} ms), "
            f"{len(refused)} x 429 (median {median(tally.overloaded) * 1000:.0f} ms; in the server "
            f"{median(refused) * 1000:.0f} vs {median(served) * 1000:.0f} ms), "
            f"{len(tally.health)} health checks, "
            f"RSS {rss_before:.0f} -> {rss_after:.0f} MB"
        )

        # the queue drains to 0 by itself once the load stops
        await settle(base)
        r = await http.post("/tag", json={"inputs": SENTENCES[0]})
        assert r.status_code == 200 and r.json()[0] == alone[SENTENCES[0]]


async def test_clients_that_hang_up_are_dropped_from_the_queue(server: Server) -> None:
    base = server.base
    await settle(base)
    ran_before = metric(base, "bigru_batch_size_sum")  # sentences through ORT so far
    gone_before = metric(base, 'bigru_requests_total{route="/tag",status="499"}')
    async with client(base, timeout=60, connections=MAX_QUEUE) as http:
        # one long sentence per request, as many as the queue holds: all are accepted
        requests = [
            asyncio.ensure_future(http.post("/tag", json={"tokens": [LONG]}))
            for _ in range(MAX_QUEUE)
        ]
        deadline = time.monotonic() + 20
        while metric(base, "bigru_queue_size") < MAX_QUEUE // 2:
            assert time.monotonic() < deadline, "the requests never queued"
            await asyncio.sleep(0.01)
        for r in requests:
            r.cancel()  # the client closes each connection with its request unanswered
        await asyncio.gather(*requests, return_exceptions=True)

    await settle(base)  # queue at 0
    ran = metric(base, "bigru_batch_size_sum") - ran_before
    gone = metric(base, 'bigru_requests_total{route="/tag",status="499"}') - gone_before
    # at most 32 had left the queue when the clients hung up, and one batch more may start
    assert ran < MAX_QUEUE, "every sentence ran: nothing was dropped"
    assert gone > 0
    print(f"\n{MAX_QUEUE} requests hung up: {ran:.0f} sentences ran, {gone:.0f} seen as gone")
    async with client(base, timeout=30) as http:
        assert (await http.get("/health")).status_code == 200
        assert (await http.post("/tag", json={"inputs": "Still here."})).status_code == 200


async def settle(base: str, seconds: float = 10) -> None:
    """Wait for bigru_queue_size to read 0."""
    deadline = time.monotonic() + seconds
    while (queued := metric(base, "bigru_queue_size")) != 0:
        assert time.monotonic() < deadline, f"the queue did not drain: {queued} left"
        await asyncio.sleep(0.05)
