"""Dynamic batching: sentences from concurrent requests share ORT runs.

One queue per task (tag and embed ask the graph for different outputs), shared under one lock
by `workers` threads. A free worker takes the next batch itself, at once: whatever is queued,
up to `max_batch_size` sentences or `max_batch_tokens` padded pieces. Batches grow by
themselves while the previous ones run, so light load pays no wait and heavy load gets full
batches (as TEI's queue does); `max_wait_ms` > 0 makes the oldest sentence wait that long for
company instead, while the batch is not full. A worker takes a run of similar lengths
around the oldest sentence (ORT's GRU pays for every pad), pads once, runs the backend and the
task's `finish` function (e.g. decoding, over the whole batch), and hands the results to the
event loop in one call. Batches are formed and run on the worker threads, never on the event
loop, so a busy loop (parsing, tokenizing, JSON) does not delay the next batch.

Each `submit` (one request) gets one future for all its sentences. `workers` batches run at once
on the one session (ORT's `Run` is thread-safe and releases the GIL): ORT's GRU hardly gains
from a second intra-op thread, while two runs side by side use two cores. While all workers are
busy, the queue grows and the next batch is fuller. The model is length-exact: a sentence gets
the same logits in any batch (its pooled embedding the same up to float32 summation order).
"""

from __future__ import annotations

import asyncio
import logging
import operator
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from app.config import Settings
from app.core.errors import BackendError, InputTooLargeError, NotReadyError, OverloadedError
from app.metrics import Metrics
from app.model.backend import Backend, Outputs
from app.model.errors import RunError
from app.model.featurize import Features, pad_batch

log = logging.getLogger(__name__)


# A batch's features and outputs -> one result per sentence (e.g. its decoded tags).
Finish = Callable[[list[Features], Outputs], list[Any]]


def split_outputs(features: list[Features], out: Outputs) -> list[Outputs]:
    """Each sentence's own slice: per-piece outputs (B, T, C) cut to its pieces, pooled (B, C)
    outputs its row."""
    return [
        {k: v[i, : f.length] if v.ndim == 3 else v[i] for k, v in out.items()}
        for i, f in enumerate(features)
    ]


@dataclass(frozen=True)
class BatchLimits:
    max_batch_size: int = 32
    max_batch_tokens: int = 4096
    max_wait_ms: float = 0.0
    max_queue: int = 2048
    max_padding: float = 1.25  # padded pieces per real piece, beyond the first few sentences

    @classmethod
    def from_settings(cls, settings: Settings) -> BatchLimits:
        return cls(
            max_batch_size=settings.max_batch_size,
            max_batch_tokens=settings.max_batch_tokens,
            max_wait_ms=settings.max_wait_ms,
            max_queue=settings.max_queue,
            max_padding=settings.max_padding,
        )


_LENGTH = operator.attrgetter("length")
# A batch takes this many sentences whatever their padding: runs this small cost about the same
# padded or not (fixed overhead per run and per step), so `max_padding` applies beyond them.
_PADDING_FREE = 4


class _Request:
    """One `submit`: its sentences' results, in order, on one future of the event loop."""

    __slots__ = ("future", "results", "missing")

    def __init__(self, future: asyncio.Future[list[Any]], size: int) -> None:
        self.future = future
        self.results: list[Any] = [None] * size
        self.missing = size


class _Item:
    """One queued sentence. Identity matters: items are found in sets and lists by `is`."""

    __slots__ = ("features", "request", "index", "arrived", "length")

    def __init__(self, features: Features, request: _Request, index: int, arrived: float) -> None:
        self.features = features
        self.request = request
        self.index = index  # its place in the request
        self.arrived = arrived
        self.length = features.length  # pieces; read many times while the queue is sorted

    @property
    def gone(self) -> bool:
        """Its request has failed or was cancelled (client disconnect): nobody wants it."""
        return self.request.future.done()


class Batcher:
    def __init__(
        self,
        backend: Backend,
        limits: BatchLimits,
        metrics: Metrics,
        workers: int = 1,
        finish: dict[str, Finish] | None = None,
    ) -> None:
        self.backend = backend
        self.task_outputs = backend.spec.task_outputs
        self.finish = finish or {}  # per task; default: split_outputs
        self.limits = limits
        self.metrics = metrics
        self.workers = workers
        # One queue per task and lane: a bulk request's sentences (more than a batch holds) run
        # when no other sentence waits, so a document does not hold up the one-sentence requests
        # behind it.
        self._queues: dict[tuple[str, bool], list[_Item]] = {
            (task, bulk): [] for task in self.task_outputs for bulk in (False, True)
        }
        self._changed = threading.Condition()  # guards the queues and `_closing`
        self._closing = False
        self._threads: list[threading.Thread] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._handed_over = asyncio.Event()  # set on the loop each time a batch is done

    @property
    def queued(self) -> int:
        return sum(len(q) for q in self._queues.values())

    def start(self) -> None:
        """Start the worker threads; results go to the running event loop."""
        self._loop = asyncio.get_running_loop()
        self._threads = [
            threading.Thread(target=self._work, name=f"bigru-ort-{i}", daemon=True)
            for i in range(self.workers)
        ]
        for thread in self._threads:
            thread.start()

    async def stop(self) -> None:
        """Refuse new sentences, finish the queued ones, then stop the threads."""
        with self._changed:
            self._closing = True
            self._changed.notify_all()
        for thread in self._threads:
            await asyncio.to_thread(thread.join)

    def submit(
        self, task: str, sentences: Sequence[Features], bulk: bool = False
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
        request = _Request(self._loop.create_future(), len(sentences))
        if not sentences:  # nothing will ever complete it
            request.future.set_result([])
            return request.future
        now = time.monotonic()
        items = [_Item(f, request, i, now) for i, f in enumerate(sentences)]
        with self._changed:
            if self.queued + len(items) > self.limits.max_queue:
                raise OverloadedError(f"more than {self.limits.max_queue} sentences queued; retry")
            self._queues[(task, bulk)].extend(items)
            self.metrics.queue_size.set(self.queued)
            self._changed.notify()
        return request.future

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

    def _work(self) -> None:
        """A worker thread: take a batch, run it, hand its results over; until stopped and
        the queues are empty."""
        while (batch := self._next_batch()) is not None:
            self._run(*batch)

    def _next_batch(self) -> tuple[str, list[_Item]] | None:
        """Wait for the oldest live sentence and its company, then take a batch. None when
        closing and nothing is left."""
        with self._changed:
            while True:
                self._drop_gone()
                key = self._oldest_task()
                if key is None:
                    if self._closing:
                        return None
                    self._changed.wait()
                    continue
                deadline = self._queues[key][0].arrived + self.limits.max_wait_ms / 1000
                while not self._closing and not self._full(key):
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        break
                    self._changed.wait(remaining)
                batch = self._take(key)
                self.metrics.queue_size.set(self.queued)
                if batch:
                    return key[0], batch

    def _drop_gone(self) -> None:
        """Forget the sentences at the head of each queue whose request has gone (client
        disconnect, failed sibling), so the oldest live one leads; the rest are dropped when a
        batch is taken (a scan of the whole queue on every wake would cost more than the
        batch)."""
        for queue in self._queues.values():
            gone = 0
            while gone < len(queue) and queue[gone].gone:
                gone += 1
            del queue[:gone]
        self.metrics.queue_size.set(self.queued)  # else the gauge keeps counting them

    def _oldest_task(self) -> tuple[str, bool] | None:
        """The queue whose head leads: the oldest sentence outside the bulk lane, if any."""
        heads = [(key[1], q[0].arrived, key) for key, q in self._queues.items() if q]
        return min(heads)[2] if heads else None

    def _full(self, key: tuple[str, bool]) -> bool:
        queue = self._queues[key]
        if len(queue) >= self.limits.max_batch_size:
            return True
        return sum(item.length for item in queue) >= self.limits.max_batch_tokens

    def _take(self, key: tuple[str, bool]) -> list[_Item]:
        """Remove and return a batch: the oldest live sentence plus neighbours by length.

        Pending sentences are sorted by length and the batch is a contiguous run of that order
        that contains the oldest one (so none starves), grown one neighbour at a time, cheaper
        padded size first, while it fits the size and token limits and, beyond its first
        sentences, keeps padding within `max_padding` (ORT's GRU computes every padded step, so
        a batch's cost follows its padded size). A sentence over the token limit on its own
        still runs, alone.
        """
        queue = [item for item in self._queues[key] if not item.gone]
        if not queue:
            self._queues[key] = []
            return []
        order = sorted(queue, key=_LENGTH)
        lengths = [item.length for item in order]
        lo = hi = order.index(queue[0])  # the oldest; the run is order[lo : hi + 1]
        real = lengths[lo]  # its pieces, pads not counted
        limits = self.limits
        while hi - lo + 1 < limits.max_batch_size:
            size = hi - lo + 2
            costs = []  # (padded pieces, lo, hi, real pieces) with one neighbour more
            if lo > 0:  # a shorter neighbour: T stays
                costs.append((size * lengths[hi], lo - 1, hi, real + lengths[lo - 1]))
            if hi + 1 < len(order):  # a longer neighbour: T grows
                costs.append((size * lengths[hi + 1], lo, hi + 1, real + lengths[hi + 1]))
            costs = [
                c
                for c in costs
                if c[0] <= limits.max_batch_tokens
                and (size <= _PADDING_FREE or c[0] <= limits.max_padding * c[3])
            ]
            if not costs:
                break
            _, lo, hi, real = min(costs)
        batch = order[lo : hi + 1]
        taken = set(batch)
        self._queues[key] = [item for item in queue if item not in taken]
        return batch

    def _run(self, task: str, batch: list[_Item]) -> None:
        """On a worker thread: pad, run, finish; the results (or the batch's error) go to the
        event loop in one call, after the run is counted (a client that reads /metrics once
        answered sees its run)."""
        features = [item.features for item in batch]
        B, T = len(batch), max(item.length for item in batch)
        try:  # anything that escapes would end this worker and leave the batch's requests hanging
            feeds = pad_batch(features)
            start = time.perf_counter()
            out = self.backend.run(feeds, self.task_outputs[task])
            self.metrics.inference_seconds.observe(time.perf_counter() - start)
            results = self.finish.get(task, split_outputs)(features, out)
        except Exception as e:  # fails this batch only; the workers go on
            log.error("%s batch of %d failed: %s", task, B, e)
            message = str(e) if isinstance(e, RunError) else f"inference failed: {e}"
            deliver, what = self._fail, BackendError(message)
        else:
            deliver, what = self._deliver, results
        self.metrics.ort_runs.labels(task).inc()
        self.metrics.batch_size.observe(B)
        self.metrics.batch_tokens.observe(B * T)
        self._hand_over(deliver, batch, what)

    def _hand_over(
        self, deliver: Callable[[list[_Item], Any], None], batch: list[_Item], what: Any
    ) -> None:
        assert self._loop is not None  # started
        self._loop.call_soon_threadsafe(deliver, batch, what)

    def _deliver(self, batch: list[_Item], results: list[Any]) -> None:
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

    def _fail(self, batch: list[_Item], error: BackendError) -> None:
        self._handed_over.set()
        for item in batch:
            if not item.request.future.done():
                item.request.future.set_exception(error)
