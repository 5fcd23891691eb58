"""The dynamic batcher on a fake backend: merging, limits, buckets, cancel, overload, errors."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import numpy as np
import pytest

from app.core.batcher import Batcher, ModelBatcher
from app.core.errors import BackendError, InputTooLargeError, OverloadedError
from app.core.queue import BatchLimits
from app.metrics import Metrics
from app.model.errors import RunError
from app.model.featurize import Features
from tests.fakes import FAIL_ID, FakeBackend

pytestmark = pytest.mark.anyio


def sentence(n: int, first: int = 1000) -> Features:
    ids = np.arange(first, first + n, dtype=np.int64)
    return Features(ids, np.ones(n, dtype=np.int64), np.arange(n, dtype=np.int64))


@asynccontextmanager
async def running(
    backend: FakeBackend, workers: int = 1, **limits: float
) -> AsyncIterator[ModelBatcher]:
    """A started batcher of one model, "m", as its engine sees it. Unless a test sets
    `max_wait_ms`, the first sentence waits 200 ms for company, so sentences submitted together
    are batched together whatever the threads do."""
    limits = {"max_wait_ms": 200, **limits}
    batcher = Batcher({"m": backend}, BatchLimits(**limits), Metrics(), workers)
    batcher.start()
    try:
        yield batcher.for_model("m")
    finally:
        await batcher.stop()


async def until(condition: Callable[[], bool], seconds: float = 5.0) -> None:
    """Poll `condition` on the event loop until it holds, failing after `seconds`."""
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.001)


def submit_each(batcher: ModelBatcher, sentences: list[Features], task: str = "tag") -> list:
    """One submit per sentence, as concurrent requests would: a future of a one-item list
    each."""
    return [batcher.submit(task, [s]) for s in sentences]


async def test_concurrent_submissions_share_a_run() -> None:
    backend = FakeBackend()
    async with running(backend, max_padding=2.0) as batcher:
        sentences = [sentence(n, first=100 * n) for n in (3, 7, 5, 1, 4)]
        results = await asyncio.gather(*submit_each(batcher, sentences))
    assert len(backend.batches) == 1
    for s, (out,) in zip(sentences, results, strict=True):
        assert (out == s.input_ids).all()  # its own result, in its request's order
    runs = batcher.batcher.metrics.registry.get_sample_value(
        "bigru_ort_runs_total", {"task": "tag", "model": "m"}
    )
    assert runs == 1


async def test_tasks_run_separately_each_with_its_results() -> None:
    backend = FakeBackend()
    async with running(backend) as batcher:
        tag = batcher.submit("tag", [sentence(3)])
        emb = batcher.submit("embed", [sentence(3)])
        (tagged,), (embedded,) = await asyncio.gather(tag, emb)
    assert sorted(backend.tasks) == ["embed", "tag"]
    assert tagged.tolist() == [1000, 1001, 1002] and embedded.tolist() == [3003]


async def test_max_batch_size() -> None:
    backend = FakeBackend()
    async with running(backend, max_batch_size=4) as batcher:
        await asyncio.gather(*submit_each(batcher, [sentence(5)] * 10))
    assert sorted(len(b) for b in backend.batches) == [2, 4, 4]


async def test_max_batch_size_one_runs_each_alone() -> None:
    backend = FakeBackend()
    async with running(backend, max_batch_size=1) as batcher:
        await asyncio.gather(*submit_each(batcher, [sentence(n) for n in (2, 3, 4, 5)]))
    assert backend.batches == [[2], [3], [4], [5]]


async def test_max_batch_tokens_counts_padding() -> None:
    backend = FakeBackend()
    async with running(backend, max_batch_tokens=30) as batcher:
        await asyncio.gather(*submit_each(batcher, [sentence(n) for n in (10, 4, 9, 10, 8, 50)]))
    for lengths in backend.batches:
        assert len(lengths) * max(lengths) <= 30 or len(lengths) == 1
    assert [50] in backend.batches  # over the budget on its own: runs alone
    assert sum(len(b) for b in backend.batches) == 6


@pytest.mark.parametrize("max_padding, runs", [(1.25, [[10] * 6, [30]]), (3.0, [[10] * 6 + [30]])])
async def test_max_padding_keeps_a_long_sentence_out(max_padding: float, runs: list) -> None:
    """Six sentences of 10 pieces and one of 30: together they would be 210 padded pieces for
    90 real ones (2.3x)."""
    backend = FakeBackend()
    async with running(backend, max_padding=max_padding) as batcher:
        await asyncio.gather(*submit_each(batcher, [sentence(n) for n in [10] * 6 + [30]]))
    assert sorted(sorted(b) for b in backend.batches) == runs


async def test_length_buckets() -> None:
    backend = FakeBackend()
    async with running(backend, max_batch_size=3) as batcher:
        await asyncio.gather(*submit_each(batcher, [sentence(n) for n in (1, 50, 2, 49, 3, 48)]))
    assert sorted(sorted(b) for b in backend.batches) == [[1, 2, 3], [48, 49, 50]]


async def test_waits_for_company_up_to_max_wait() -> None:
    backend = FakeBackend()
    async with running(backend, max_wait_ms=500) as batcher:
        first = batcher.submit("tag", [sentence(2)])
        await asyncio.sleep(0.02)  # the second sentence arrives 20 ms after the first
        second = batcher.submit("tag", [sentence(3)])
        await asyncio.gather(first, second)
    assert backend.batches == [[2, 3]]


async def test_a_free_worker_takes_a_lone_sentence_at_once() -> None:
    """With no wait, light load pays nothing for batching: a lone sentence runs as soon as it
    is queued, whatever the company it could have waited for."""
    backend = FakeBackend()
    async with running(backend, max_wait_ms=0) as batcher:
        started = time.monotonic()
        await batcher.submit("tag", [sentence(2)])
        assert time.monotonic() - started < 0.2  # the waiting default of `running` is 200 ms
    assert backend.batches == [[2]]


async def test_without_a_wait_batches_grow_while_a_run_is_busy() -> None:
    backend = FakeBackend()
    backend.gate = threading.Event()
    async with running(backend, max_wait_ms=0) as batcher:
        busy = batcher.submit("tag", [sentence(1)])
        await until(backend.entered.is_set)  # the only worker is in its run
        queued = submit_each(batcher, [sentence(2), sentence(3), sentence(4)])
        backend.gate.set()
        await asyncio.gather(busy, *queued)
    assert backend.batches == [[1], [2, 3, 4]]


async def test_cancelled_items_are_skipped() -> None:
    backend = FakeBackend()
    backend.gate = threading.Event()
    async with running(backend, max_wait_ms=0) as batcher:
        busy = batcher.submit("tag", [sentence(1)])
        await until(backend.entered.is_set)  # the first run is now blocked in the worker thread
        gone, kept = submit_each(batcher, [sentence(2), sentence(3)])
        gone.cancel()
        backend.gate.set()
        await asyncio.gather(busy, kept)
    assert backend.batches == [[1], [3]]


async def test_queue_size_forgets_cancelled_items() -> None:
    """Sentences whose clients left while a batch ran leave the gauge too, not just the queue."""
    backend = FakeBackend()
    backend.gate = threading.Event()
    async with running(backend, max_wait_ms=0) as batcher:
        busy = batcher.submit("tag", [sentence(1)])
        await until(backend.entered.is_set)  # the first run is now blocked in the worker thread
        gone = submit_each(batcher, [sentence(2), sentence(3)])
        gauge = batcher.batcher.metrics.registry.get_sample_value
        assert gauge("bigru_queue_size") == 2
        for future in gone:
            future.cancel()
        backend.gate.set()
        await busy
        await until(lambda: batcher.batcher.queued == 0 and gauge("bigru_queue_size") == 0)
    assert backend.batches == [[1]]


async def test_a_request_larger_than_the_queue_is_413_not_429() -> None:
    async with running(FakeBackend(), max_queue=4) as batcher:
        with pytest.raises(InputTooLargeError):  # 413: a retry could never fit
            batcher.submit("tag", [sentence(2)] * 5)
        assert batcher.batcher.queued == 0
        (out, *_) = await batcher.submit("tag", [sentence(2)] * 4)
        assert out.tolist() == [1000, 1001]


async def test_overload_refuses_the_whole_request() -> None:
    backend = FakeBackend()
    async with running(backend, max_queue=3) as batcher:
        futures = [batcher.submit("tag", [sentence(2), sentence(2)])]
        with pytest.raises(OverloadedError):
            batcher.submit("embed", [sentence(2), sentence(2)])
        assert batcher.batcher.queued == 2  # nothing of the refused request was queued
        futures.append(batcher.submit("embed", [sentence(2)]))
        await asyncio.gather(*futures)


@pytest.mark.parametrize(
    ("error", "message"), [(RuntimeError, "inference failed: boom"), (RunError, "boom")]
)
async def test_an_exception_fails_only_its_batch(
    error: Callable[[str], Exception], message: str
) -> None:
    backend = FakeBackend(error)
    async with running(backend, max_batch_size=2) as batcher:
        ok, bad = submit_each(batcher, [sentence(4), sentence(4, first=FAIL_ID)])
        others = submit_each(batcher, [sentence(4), sentence(4)])
        results = await asyncio.gather(ok, bad, *others, return_exceptions=True)
    assert all(isinstance(r, BackendError) and str(r) == message for r in results[:2])
    assert all(isinstance(r, list) for r in results[2:])
    assert len(backend.batches) == 2


async def test_stop_drains_the_queue() -> None:
    backend = FakeBackend()
    batcher = Batcher({"m": backend}, BatchLimits(max_wait_ms=1000), Metrics())
    batcher.start()
    futures = submit_each(batcher.for_model("m"), [sentence(2), sentence(3)])
    await batcher.stop()
    assert all(f.done() and not f.cancelled() for f in futures)


@pytest.mark.parametrize("workers, overlap", [(2, True), (1, False)])
async def test_workers_run_batches_side_by_side(workers: int, overlap: bool) -> None:
    barrier = threading.Barrier(2, timeout=2)  # broken: the runs did not overlap
    backend = FakeBackend(hook=lambda task, batch: barrier.wait())
    async with running(backend, workers=workers, max_batch_size=1) as batcher:
        futures = submit_each(batcher, [sentence(3), sentence(4)])
        results = await asyncio.gather(*futures, return_exceptions=True)
    ok = [isinstance(r, list) for r in results]
    assert ok == [overlap, overlap]
    if overlap:
        assert sorted(len(r[0]) for r in results) == [3, 4]


async def test_a_request_split_over_batches_gets_its_results_in_order() -> None:
    backend = FakeBackend()
    async with running(backend, max_batch_size=2, max_padding=100) as batcher:
        sentences = [sentence(n, first=100 * n) for n in (5, 1, 4, 2, 3)]
        results = await batcher.submit("embed", sentences)
    assert len(backend.batches) == 3
    assert [int(r[0]) for r in results] == [int(s.input_ids.sum()) for s in sentences]


async def test_a_failed_batch_fails_its_whole_request() -> None:
    backend = FakeBackend()
    async with running(backend, max_batch_size=1) as batcher:
        with pytest.raises(BackendError):
            await batcher.submit("tag", [sentence(2), sentence(2, first=FAIL_ID), sentence(3)])


async def test_workers_take_batches_while_the_event_loop_is_busy() -> None:
    """A free worker starts the next batch itself: a busy event loop (other requests' parsing,
    tokenizing, JSON) does not leave it idle."""
    backend = FakeBackend()
    async with running(backend, max_batch_size=1, max_wait_ms=0) as batcher:
        futures = submit_each(batcher, [sentence(n) for n in (2, 3, 4)])
        deadline = time.monotonic() + 5
        while len(backend.batches) < 3 and time.monotonic() < deadline:
            time.sleep(0.001)  # blocks the event loop, which delivers nothing meanwhile
        assert sorted(map(len, backend.batches)) == [1, 1, 1]  # all three ran
        assert not any(f.done() for f in futures)
        await asyncio.gather(*futures)


async def test_a_batch_that_cannot_be_padded_fails_only_its_request() -> None:
    backend = FakeBackend()
    broken = Features(np.arange(4), np.ones(2, dtype=np.int64), np.arange(4))  # 2 case ids, 4 ids
    async with running(backend, max_batch_size=1) as batcher:
        bad, good = submit_each(batcher, [broken, sentence(3)])
        results = await asyncio.wait_for(asyncio.gather(bad, good, return_exceptions=True), 5)
    assert isinstance(results[0], BackendError)
    assert isinstance(results[1], list) and backend.batches == [[3]]


async def test_an_empty_request_is_answered_at_once() -> None:
    backend = FakeBackend()
    async with running(backend) as batcher:
        assert await asyncio.wait_for(batcher.submit("embed", []), 1) == []
    assert backend.batches == []


async def test_feed_puts_more_sentences_than_a_batch_in_the_bulk_lane_behind_others() -> None:
    backend = FakeBackend()
    backend.gate = threading.Event()
    async with running(backend, max_batch_size=2, max_wait_ms=0) as batcher:
        first = batcher.submit("tag", [sentence(2, first=1)])
        await asyncio.to_thread(backend.entered.wait, 5)  # the one worker is held
        document = asyncio.ensure_future(
            batcher.feed("tag", [sentence(3, first=100 * k) for k in range(1, 7)])
        )
        await until(lambda: batcher.batcher.queued == 6)
        single = batcher.submit("tag", [sentence(2, first=7)])  # shorter: none rides along
        backend.gate.set()
        results = await document
        await asyncio.gather(first, single)
    assert [int(r[0]) for r in results] == [100 * k for k in range(1, 7)]  # in order
    assert backend.batches[:2] == [[2], [2]]  # the single sentence went before the document
    assert backend.batches[2:] == [[3, 3]] * 3


async def test_feed_goes_in_parts_and_waits_for_its_own_when_the_queue_is_full() -> None:
    backend = FakeBackend()
    async with running(backend, max_batch_size=4, max_queue=32, max_wait_ms=0) as batcher:
        sentences = [sentence(2, first=10 * k) for k in range(1, 101)]  # parts of 2, over 32
        results = await batcher.feed("tag", sentences)
    assert [int(r[0]) for r in results] == [10 * k for k in range(1, 101)]
    assert max(len(b) for b in backend.batches) <= 4


async def test_feed_refuses_when_the_queue_is_full_of_others() -> None:
    backend = FakeBackend()
    backend.gate = threading.Event()
    async with running(backend, max_batch_size=2, max_queue=4, max_wait_ms=0) as batcher:
        held = batcher.submit("tag", [sentence(2)])
        await asyncio.to_thread(backend.entered.wait, 5)
        others = batcher.submit("tag", [sentence(2)] * 4)
        with pytest.raises(OverloadedError):
            await batcher.feed("tag", [sentence(2)] * 8)
        backend.gate.set()
        await asyncio.gather(held, others)


async def test_models_share_the_queue_limit_and_never_share_a_batch() -> None:
    a, b = FakeBackend(), FakeBackend()
    a.gate = threading.Event()  # a's one worker holds its first run
    batcher = Batcher({"a": a, "b": b}, BatchLimits(max_queue=4), Metrics())
    batcher.start()
    try:
        on_a, on_b = batcher.for_model("a"), batcher.for_model("b")
        held = on_a.submit("tag", [sentence(2)])
        await asyncio.to_thread(a.entered.wait, 5)
        queued = on_a.submit("tag", [sentence(2)] * 3)
        with pytest.raises(OverloadedError):  # the queue is the server's: 3 of a's + 2 > 4
            on_b.submit("tag", [sentence(2)] * 2)
        a.gate.set()
        await asyncio.gather(held, queued)
        (alone,) = await on_b.submit("tag", [sentence(3, first=7)])
    finally:
        await batcher.stop()
    assert alone.tolist() == [7, 8, 9] and b.batches == [[3]]  # b ran its sentence only
    assert sorted(map(len, a.batches)) == [1, 3]


async def test_a_model_runs_while_another_models_batch_is_held() -> None:
    a, b = FakeBackend(), FakeBackend()
    a.gate = threading.Event()
    batcher = Batcher({"a": a, "b": b}, BatchLimits(), Metrics())
    batcher.start()
    try:
        held = batcher.for_model("a").submit("tag", [sentence(2)])
        await asyncio.to_thread(a.entered.wait, 5)
        (result,) = await asyncio.wait_for(batcher.for_model("b").submit("tag", [sentence(1)]), 5)
        assert not held.done()  # b was answered while a's run was still held
        a.gate.set()
        await held
    finally:
        await batcher.stop()
    assert result.tolist() == [1000]


async def test_stop_drains_every_models_queue() -> None:
    backends = {name: FakeBackend() for name in "ab"}
    batcher = Batcher(backends, BatchLimits(max_wait_ms=1000), Metrics())
    batcher.start()
    futures = [batcher.for_model(name).submit("tag", [sentence(2)]) for name in "ab"]
    await batcher.stop()
    assert all(f.done() and not f.cancelled() for f in futures)
