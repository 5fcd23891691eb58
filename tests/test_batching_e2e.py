"""Concurrent requests through the real app share ORT runs and get the answers they would alone."""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import Callable

import httpx
import numpy as np
import pytest
from asgi_lifespan import LifespanManager

from app.config import Settings
from app.main import create_app

pytestmark = pytest.mark.anyio

TEXTS = [
    "Hello.",
    "Angela Merkel met Emmanuel Macron in Paris on Tuesday.",
    "The quick brown fox jumps over the lazy dog.",
    "Microsoft opened a new office in Seattle last year, hiring 200 engineers.",
    "Wait!",
    "I can't believe it's already December; the U.S. markets close early today.",
    "John lives in London.",
    "She said that the report from the World Health Organization was late again.",
    "Yes",
    "Tokyo, Osaka and Kyoto are cities in Japan.",
    "They're gonna sell the house in Springfield for $350,000 next month.",
    "Dr. Smith works at Mount Sinai Hospital in New York City.",
]


async def until(condition: Callable[[], bool], seconds: float = 5.0) -> None:
    """Poll `condition` until it holds, failing after `seconds`."""
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.005)


async def ort_runs(client: httpx.AsyncClient, task: str) -> float:
    text = (await client.get("/metrics")).text
    match = re.search(rf'^bigru_ort_runs_total{{model="[^"]*",task="{task}"}} (\S+)$', text, re.M)
    assert match, text
    return float(match.group(1))


@pytest.mark.slow  # seconds: kept out of make test-fast
async def test_concurrent_requests_are_batched_and_exact(
    serve: Callable, make_settings: Callable[..., Settings]
) -> None:
    batched_app = create_app(make_settings(max_wait_ms=50))
    async with serve(batched_app) as client:
        for route, task, key in (("/tag", "tag", "inputs"), ("/embed", "embed", "inputs")):
            before = await ort_runs(client, task)
            responses = await asyncio.gather(*(client.post(route, json={key: t}) for t in TEXTS))
            assert all(r.status_code == 200 for r in responses)
            assert await ort_runs(client, task) - before < len(TEXTS)
            if task == "tag":
                tagged = [r.json() for r in responses]
            else:
                embedded = [r.json() for r in responses]

    alone_app = create_app(make_settings(max_batch_size=1))
    async with serve(alone_app) as client:
        before = await ort_runs(client, "tag")
        alone_tagged = [(await client.post("/tag", json={"inputs": t})).json() for t in TEXTS]
        assert await ort_runs(client, "tag") - before == len(TEXTS)
        alone_embedded = [(await client.post("/embed", json={"inputs": t})).json() for t in TEXTS]
    # bit for bit, but the parse's scores: the parsing layer's products round a row differently
    # in a batch (~1e-8), its heads and relations are the same
    assert without_parse_scores(tagged) == without_parse_scores(alone_tagged)
    for got, want in zip(parse_scores(tagged), parse_scores(alone_tagged), strict=True):
        assert got == pytest.approx(want, rel=1e-6)
    # The graph's masked mean sums h over the padded T axis; a longer axis changes ORT's float32
    # summation order, so pooled vectors agree to rounding (~1e-8), not bit for bit.
    for got, want in zip(embedded, alone_embedded, strict=True):
        assert np.asarray(got) == pytest.approx(np.asarray(want), abs=1e-6)


def parse_scores(answers: list[list[dict]]) -> list[float]:
    return [t["deprel_score"] for a in answers for r in a for t in r["tokens"] if "deprel" in t]


def without_parse_scores(answers: list[list[dict]]) -> list[list[dict]]:
    return [
        [{**r, "tokens": [{k: v for k, v in t.items() if k != "deprel_score"} for t in r["tokens"]]}
         for r in a]
        for a in answers
    ]  # fmt: skip


@pytest.mark.slow  # seconds: kept out of make test-fast
async def test_a_disconnected_client_is_not_run(make_settings: Callable[..., Settings]) -> None:
    # the sentence waits 2 s for company: time enough to see it queued on a busy machine
    settings = make_settings(max_wait_ms=2000)
    app = create_app(settings)
    registry = app.state.metrics.registry
    tag_runs = {"task": "tag", "model": settings.model_dir.name}
    body = json.dumps({"inputs": "Hello there."}).encode()
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/tag",
        "raw_path": b"/tag",
        "query_string": b"",
        "root_path": "",
        "headers": [(b"content-type", b"application/json")],
        "client": ("test", 1),
        "server": ("test", 80),
    }
    messages = [{"type": "http.request", "body": body, "more_body": False}]
    gone = asyncio.Event()
    sent: list[dict] = []

    async def receive() -> dict:
        if messages:
            return messages.pop(0)
        await gone.wait()
        return {"type": "http.disconnect"}

    async def send(message: dict) -> None:
        sent.append(message)

    async with LifespanManager(app, startup_timeout=120, shutdown_timeout=60) as manager:
        before = registry.get_sample_value("bigru_ort_runs_total", tag_runs)
        assert before  # the warm-up's runs
        call = asyncio.create_task(manager.app(scope, receive, send))
        await until(lambda: registry.get_sample_value("bigru_queue_size") == 1)  # waiting
        gone.set()
        await call
        # at max_wait the worker looks at its queue, finds the sentence gone and drops it
        await until(lambda: registry.get_sample_value("bigru_queue_size") == 0, seconds=10)
        assert registry.get_sample_value("bigru_ort_runs_total", tag_runs) == before
    assert sent[0]["status"] == 499
