"""Dynamic batching: sentences from concurrent requests share ORT runs.

One queue per task (tag and embed ask the graph for different outputs) and one loop task. When
a worker is free, the loop waits for a sentence, then for company until the batch is full
(`max_batch_size` sentences or `max_batch_tokens` padded pieces) or the oldest sentence has
waited `max_wait_ms`. It then takes a run of similar lengths around the oldest sentence (ORT's
GRU pays for every pad), pads once, runs the backend on a worker thread so the event loop never
blocks, and hands each sentence its own result: its slice of the outputs, or what the task's
`finish` function (on the worker thread, over the whole batch) makes of them. `workers` batches
run at once on the one session (ORT's `Run` is thread-safe): ORT's GRU hardly gains from a
second intra-op thread, while two runs side by side use two cores. While all workers are busy,
the queue grows and the next batch is fuller. The model is length-exact: a sentence gets the
same logits in any batch (its pooled embedding the same up to float32 summation order).
"""

from __future__ import annotations

import asyncio
import logging
import operator
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from app.config import Settings
from app.errors import BackendError, InputTooLargeError, NotReadyError, OverloadedError
from app.featurize import Features, pad_batch
from app.metrics import Metrics

log = logging.getLogger(__name__)

TASK_OUTPUTS = {"tag": ["upos_logits", "ner_logits"], "embed": ["embedding"]}

Outputs = dict[str, np.ndarray]
# A batch's features and outputs -> one result per sentence (e.g. its decoded tags).
Finish = Callable[[list[Features], Outputs], list[Any]]


def split_outputs(features: list[Features], out: Outputs) -> list[Outputs]:
    """Each sentence's own slice: per-piece outputs (B, T, C) cut to its pieces, pooled (B, C)
    outputs its row."""
    return [
        {k: v[i, : f.length] if v.ndim == 3 else v[i] for k, v in out.items()}
        for i, f in enumerate(features)
    ]


class Runner(Protocol):
    def run(self, feeds: dict[str, np.ndarray], outputs: list[str]) -> Outputs: ...


@dataclass(frozen=True)
class BatchLimits:
    max_batch_size: int = 32
    max_batch_tokens: int = 4096
    max_wait_ms: float = 2.0
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


@dataclass(eq=False)  # identity: items are found in lists by `is`
class _Item:
    features: Features
    future: asyncio.Future[Any]
    arrived: float = field(default_factory=time.monotonic)
    length: int = field(init=False)  # pieces; read many times while the queue is sorted

    def __post_init__(self) -> None:
        self.length = self.features.length


class Batcher:
    def __init__(
        self,
        backend: Runner,
        limits: BatchLimits,
        metrics: Metrics,
        workers: int = 1,
        finish: dict[str, Finish] | None = None,
    ) -> None:
        self.backend = backend
        self.finish = finish or {}  # per task; default: split_outputs
        self.limits = limits
        self.metrics = metrics
        self._queues: dict[str, list[_Item]] = {task: [] for task in TASK_OUTPUTS}
        self._wake = asyncio.Event()
        self._closing = False
        self._task: asyncio.Task[None] | None = None
        self._free = asyncio.Semaphore(workers)  # a batch is formed only when a worker is free
        self._running: set[asyncio.Task[None]] = set()
        self._executor = ThreadPoolExecutor(workers, thread_name_prefix="bigru-ort")

    @property
    def queued(self) -> int:
        return sum(len(q) for q in self._queues.values())

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._loop(), name="bigru-batcher")

    async def stop(self) -> None:
        """Refuse new sentences, finish the queued ones, then stop the loop and the thread."""
        self._closing = True
        self._wake.set()
        if self._task is not None:
            await self._task
        self._executor.shutdown(wait=True)

    def submit(self, task: str, sentences: Sequence[Features]) -> list[asyncio.Future[Any]]:
        """Queue all `sentences` of one request, or none of them (OverloadedError)."""
        if self._closing or self._task is None:
            raise NotReadyError("the service is not accepting work")
        if len(sentences) > self.limits.max_queue:  # would never fit: retrying cannot help
            raise InputTooLargeError(
                f"{len(sentences)} sentences; the queue holds at most {self.limits.max_queue}"
            )
        if self.queued + len(sentences) > self.limits.max_queue:
            raise OverloadedError(f"more than {self.limits.max_queue} sentences queued; retry")
        loop = asyncio.get_running_loop()
        items = [_Item(f, loop.create_future()) for f in sentences]
        self._queues[task].extend(items)
        self.metrics.queue_size.set(self.queued)
        self._wake.set()
        return [item.future for item in items]

    async def _loop(self) -> None:
        while True:
            await self._free.acquire()
            task = await self._next_task()
            if task is None:  # closing, and nothing left
                break
            await self._gather(task)
            batch = self._take(task)
            self.metrics.queue_size.set(self.queued)
            if not batch:
                self._free.release()
                continue
            run = asyncio.get_running_loop().create_task(self._run(task, batch))
            self._running.add(run)
            run.add_done_callback(self._finished)
        await asyncio.gather(*self._running)

    def _finished(self, run: asyncio.Task[None]) -> None:
        self._running.discard(run)
        self._free.release()

    async def _next_task(self) -> str | None:
        """The task of the oldest live sentence, once there is one; None when closing idle."""
        while True:
            self._drop_cancelled()
            task = self._oldest_task()
            if task is not None or self._closing:
                return task
            self._wake.clear()
            await self._wake.wait()

    def _drop_cancelled(self) -> None:
        """Forget the sentences at the head of each queue whose request has gone (client
        disconnect, failed sibling), so the oldest live one leads; the rest are dropped when a
        batch is taken (a scan of the whole queue here, each time, cost more than the batch)."""
        for queue in self._queues.values():
            gone = 0
            while gone < len(queue) and queue[gone].future.done():
                gone += 1
            del queue[:gone]
        self.metrics.queue_size.set(self.queued)  # else the gauge keeps counting them

    def _oldest_task(self) -> str | None:
        heads = [(q[0].arrived, task) for task, q in self._queues.items() if q]
        return min(heads)[1] if heads else None

    async def _gather(self, task: str) -> None:
        """Wait until `task` can fill a batch or its oldest sentence has waited long enough."""
        deadline = self._queues[task][0].arrived + self.limits.max_wait_ms / 1000
        while not self._closing and not self._full(task):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return
            self._wake.clear()
            try:
                await asyncio.wait_for(self._wake.wait(), remaining)
            except TimeoutError:
                return

    def _full(self, task: str) -> bool:
        queue = self._queues[task]
        if len(queue) >= self.limits.max_batch_size:
            return True
        return sum(item.length for item in queue) >= self.limits.max_batch_tokens

    def _take(self, task: str) -> list[_Item]:
        """Remove and return a batch: the oldest live sentence plus neighbours by length.

        Pending sentences are sorted by length and the batch is a contiguous run of that order
        that contains the oldest one (so none starves), grown one neighbour at a time, cheaper
        padded size first, while it fits the size and token limits and, beyond its first
        sentences, keeps padding within `max_padding` (ORT's GRU computes every padded step:
        on a deep queue of EWT sentences, batches of 32 regardless were 1.47x padding, and ORT
        ran ~20% faster on batches held to 1.2x). A sentence over the token limit on its own
        still runs, alone.
        """
        queue = [item for item in self._queues[task] if not item.future.done()]
        if not queue:
            self._queues[task] = []
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
        self._queues[task] = [item for item in queue if item not in taken]
        return batch

    async def _run(self, task: str, batch: list[_Item]) -> None:
        features = [item.features for item in batch]
        feeds = pad_batch(features)
        B, T = feeds["input_ids"].shape
        timing: list[float] = []
        try:
            loop = asyncio.get_running_loop()
            results = await loop.run_in_executor(
                self._executor, self._infer, task, features, feeds, timing
            )
        except Exception as e:  # fails this batch only; the loop goes on
            log.error("%s batch of %d failed: %s", task, B, e)
            message = str(e) if isinstance(e, BackendError) else f"inference failed: {e}"
            for item in batch:
                if not item.future.done():
                    item.future.set_exception(BackendError(message))
            return
        finally:
            self.metrics.ort_runs.labels(task).inc()
            self.metrics.batch_size.observe(B)
            self.metrics.batch_tokens.observe(B * T)
            if timing:
                self.metrics.inference_seconds.observe(timing[0])
        for item, result in zip(batch, results, strict=True):
            if not item.future.done():  # else the client went away while the batch ran
                item.future.set_result(result)

    def _infer(
        self,
        task: str,
        features: list[Features],
        feeds: dict[str, np.ndarray],
        timing: list[float],
    ) -> list[Any]:
        """On a worker thread: the ORT run (its seconds appended to `timing`), then `finish`."""
        start = time.perf_counter()
        try:
            out = self.backend.run(feeds, TASK_OUTPUTS[task])
        finally:
            timing.append(time.perf_counter() - start)
        return self.finish.get(task, split_outputs)(features, out)
