"""Dynamic batching: sentences from concurrent requests share model runs.

Each model's backend offers tasks (tag, embed, segment a batch); the batcher decides which
sentences run together. One batcher serves every model of the server: its queues
(app.core.queue) are shared under one lock, so the queue limit and the drain are the server's
whatever the number of models (a limit per model would let each hold a full queue's memory).
Each model has `workers` threads of its own (as Triton gives each model its instances): a batch
is one model's and one task's, and a model's sentences never wait for another model's batch to
finish, so a flood of requests to one model shares the cores with another's rather than queueing
it. A model's engine sees its own tasks only (`ModelBatcher`). A free
worker takes the next batch itself, at once: whatever is queued, up to `max_batch_size`
sentences or `max_batch_tokens` padded pieces. Batches grow by themselves while the previous
ones run, so light load pays no wait and heavy load gets full batches (as TEI's queue does);
`max_wait_ms` > 0 makes the oldest sentence wait that long for company instead, while the batch
is not full. A worker runs the batch's task on the backend (padding, ONNX Runtime, decoding)
and hands the results to the event loop in one call. Batches are formed and run on the worker
threads, never on the event loop, so a busy loop (parsing, tokenizing, JSON) does not delay the
next batch.

Each `submit` (one request) gets one future for all its sentences. `workers` batches run at once
on a model's one session (ORT's `Run` is thread-safe and releases the GIL): ORT's GRU hardly gains
from a second intra-op thread, while two runs side by side use two cores. While all workers are
busy, the queue grows and the next batch is fuller. The model is length-exact: a sentence gets
the same results in any batch.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from app.core.errors import BackendError, InputTooLargeError, NotReadyError, OverloadedError
from app.core.queue import BatchLimits, Item, Job, Lane, Queues, Request
from app.metrics import Metrics
from app.model.backend import Backend
from app.model.errors import RunError
from app.model.featurize import Features

log = logging.getLogger(__name__)

# A bulk request's sentences go in parts of at most this fraction of the queue, two at a time.
_BULK_SHARE = 16


class Batcher:
    def __init__(
        self,
        backends: Mapping[str, Backend],
        limits: BatchLimits,
        metrics: Metrics,
        workers: int = 1,
    ) -> None:
        """`backends`: each model's, by the name requests give it."""
        self._jobs: dict[Job, Callable[[list[Features]], list[Any]]] = {
            (name, task): _task(backend, task)
            for name, backend in backends.items()
            for task in backend.spec.tasks
        }
        self.limits = limits
        self.metrics = metrics
        self.workers = workers
        self._queues = Queues(self._jobs, limits)
        lock = threading.Lock()  # guards the queues and `_closing`
        # each model's threads wait on its own condition, so a submit wakes one of them
        self._changed = {name: threading.Condition(lock) for name in backends}
        self._lock = lock
        self._closing = False
        self._threads: list[threading.Thread] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._handed_over = asyncio.Event()  # set on the loop each time a batch is done

    @property
    def queued(self) -> int:
        return self._queues.queued

    def start(self) -> None:
        """Start the worker threads; results go to the running event loop."""
        self._loop = asyncio.get_running_loop()
        self._threads = [
            threading.Thread(target=self._work, args=(model,), name=f"bigru-ort-{i}", daemon=True)
            for model in self._changed
            for i in range(self.workers)
        ]
        for thread in self._threads:
            thread.start()

    async def stop(self) -> None:
        """Refuse new sentences, finish the queued ones, then stop the threads."""
        with self._lock:
            self._closing = True
            for changed in self._changed.values():
                changed.notify_all()
        for thread in self._threads:
            await asyncio.to_thread(thread.join)

    def for_model(self, name: str) -> ModelBatcher:
        return ModelBatcher(self, name)

    def submit(
        self, job: Job, sentences: Sequence[Features], bulk: bool = False
    ) -> asyncio.Future[list[Any]]:
        """Queue all `sentences` of one request, or none of them (OverloadedError). The future
        gives their results in order, or the error of the first batch of theirs that failed.
        `bulk`: in the lane that yields to every other sentence."""
        if self._closing or self._loop is None:
            raise NotReadyError("the service is not accepting work")
        if len(sentences) > self.limits.max_queue:  # would never fit: retrying cannot help
            raise InputTooLargeError(
                f"{len(sentences)} sentences; the queue holds at most {self.limits.max_queue}"
            )
        request = Request(self._loop.create_future(), len(sentences))
        if not sentences:  # nothing will ever complete it
            request.future.set_result([])
            return request.future
        now = time.monotonic()
        items = [Item(f, request, i, now) for i, f in enumerate(sentences)]
        with self._lock:
            if self.queued + len(items) > self.limits.max_queue:
                raise OverloadedError(f"more than {self.limits.max_queue} sentences queued; retry")
            self._queues.add((job, bulk), items)
            self.metrics.queue_size.set(self.queued)
            self._changed[job[0]].notify()
        return request.future

    async def feed(self, job: Job, sentences: Sequence[Features]) -> list[Any]:
        """Every result of `sentences`, in order, however many: more than a batch holds go in
        the bulk lane, in parts of at most a sixteenth of the queue, two at a time. So a
        document is never refused for its size alone, while a full queue still refuses new
        work (OverloadedError, 429)."""
        bulk = len(sentences) > self.limits.max_batch_size
        part = max(1, self.limits.max_queue // _BULK_SHARE)
        if len(sentences) <= part:
            return await self.submit(job, sentences, bulk)
        results: list[Any] = []
        pending: deque[asyncio.Future[list[Any]]] = deque()
        try:
            for i in range(0, len(sentences), part):
                while True:
                    try:
                        pending.append(self.submit(job, sentences[i : i + part], bulk))
                        break
                    except OverloadedError:
                        if not pending:  # nothing of ours to wait for: the service is full
                            raise
                        results += await pending.popleft()
                if len(pending) == 2:
                    results += await pending.popleft()
            while pending:
                results += await pending.popleft()
        finally:
            for future in pending:  # cancelled or failed: the rest is skipped, not run for nobody
                future.cancel()
        return results

    def check_room(self, n: int) -> None:
        """OverloadedError now if `n` more sentences (or a queue's worth, for more) would not
        fit: what a request does first, before work (tokenizing, segmenting) whose result could
        not be queued."""
        if self.queued + min(n, self.limits.max_queue) > self.limits.max_queue:
            raise OverloadedError(f"more than {self.limits.max_queue} sentences queued; retry")

    async def room(self) -> None:
        """Until a batch has been handed over since the call: the queue has shrunk."""
        self._handed_over.clear()
        await self._handed_over.wait()

    def _work(self, model: str) -> None:
        """A worker thread of `model`: take a batch, run it, hand its results over; until
        stopped and the model's queues are empty."""
        while (batch := self._next_batch(model)) is not None:
            self._run(*batch)

    def _next_batch(self, model: str) -> tuple[Job, list[Item]] | None:
        """Wait for the model's oldest live sentence and its company, then take a batch. None
        when closing and nothing of the model's is left."""
        queues, changed = self._queues, self._changed[model]
        with changed:
            while True:
                queues.drop_gone()
                self.metrics.queue_size.set(self.queued)  # else the gauge counts the gone
                lane = queues.leading(model)
                if lane is None:
                    if self._closing:
                        return None
                    changed.wait()
                    continue
                self._wait_for_company(lane, changed)
                batch = queues.take(lane)
                self.metrics.queue_size.set(self.queued)
                if batch:
                    return lane[0], batch

    def _wait_for_company(self, lane: Lane, changed: threading.Condition) -> None:
        """Up to `max_wait_ms` after the lane's oldest sentence arrived, while the batch is not
        full (the lock is held, and released while waiting)."""
        deadline = self._queues.oldest_arrival(lane) + self.limits.max_wait_ms / 1000
        while not self._closing and not self._queues.full(lane):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return
            changed.wait(remaining)

    def _run(self, job: Job, batch: list[Item]) -> None:
        """On a worker thread: run the job's task on the batch; the results (or the batch's
        error) go to the event loop in one call, after the run is counted (a client that reads
        /metrics once answered sees its run)."""
        features = [item.features for item in batch]
        B, T = len(batch), max(item.length for item in batch)
        model, task = job
        try:  # anything that escapes would end this worker and leave the batch's requests hanging
            start = time.perf_counter()
            results = self._jobs[job](features)
            self.metrics.inference_seconds.labels(model).observe(time.perf_counter() - start)
        except Exception as e:  # fails this batch only; the workers go on
            log.error("%s batch of %d for %s failed: %s", task, B, model, e)
            message = str(e) if isinstance(e, RunError) else f"inference failed: {e}"
            deliver, what = self._fail, BackendError(message)
        else:
            deliver, what = self._deliver, results
        self.metrics.ort_runs.labels(task, model).inc()
        self.metrics.batch_size.labels(model).observe(B)
        self.metrics.batch_tokens.labels(model).observe(B * T)
        self._hand_over(deliver, batch, what)

    def _hand_over(
        self, deliver: Callable[[list[Item], Any], None], batch: list[Item], what: Any
    ) -> None:
        assert self._loop is not None  # started
        self._loop.call_soon_threadsafe(deliver, batch, what)

    def _deliver(self, batch: list[Item], results: list[Any]) -> None:
        """On the event loop: each sentence's result into its request; complete requests done."""
        self._handed_over.set()
        for item, result in zip(batch, results, strict=True):
            request = item.request
            if request.future.done():  # failed, or the client went away while the batch ran
                continue
            request.results[item.index] = result
            request.missing -= 1
            if not request.missing:
                request.future.set_result(request.results)

    def _fail(self, batch: list[Item], error: BackendError) -> None:
        self._handed_over.set()
        for item in batch:
            if not item.request.future.done():
                item.request.future.set_exception(error)


class ModelBatcher:
    """One model's way into the shared batcher: what its engine submits names a task only."""

    def __init__(self, batcher: Batcher, model: str) -> None:
        self.batcher = batcher
        self.model = model
        self.limits = batcher.limits
        self.workers = batcher.workers

    def submit(
        self, task: str, sentences: Sequence[Features], bulk: bool = False
    ) -> asyncio.Future[list[Any]]:
        return self.batcher.submit((self.model, task), sentences, bulk)

    async def feed(self, task: str, sentences: Sequence[Features]) -> list[Any]:
        return await self.batcher.feed((self.model, task), sentences)

    def check_room(self, n: int) -> None:
        self.batcher.check_room(n)

    async def room(self) -> None:
        await self.batcher.room()


def _task(backend: Backend, task: str) -> Callable[[list[Features]], list[Any]]:
    tasks = {"tag": backend.tag, "embed": backend.embed, "segment": backend.segment}
    return tasks[task]
