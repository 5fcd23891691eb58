"""The batcher's queues: the sentences waiting, one queue per job (a model's task) and lane,
and which of them make the next batch.

A job's sentences queue in one of two lanes: a bulk request's (more sentences than a batch
holds) wait in the lane that yields to every other sentence of its model, so a document does not
hold up the one-sentence requests behind it. A model's next batch grows around its oldest live
sentence outside the bulk lanes (or, if there is none, inside them) by neighbours of similar
length: ORT's GRU pays for every padded step. Room left in a batch is filled from its job's bulk
lane with sentences no longer than its longest. A batch never mixes models or tasks. Not
thread-safe: the batcher holds its lock around every call.
"""

from __future__ import annotations

import asyncio
import operator
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from app.config import Settings
from app.model.featurize import Features

_LENGTH = operator.attrgetter("length")
# A batch takes this many sentences whatever their padding: runs this small cost about the same
# padded or not (fixed overhead per run and per step), so `max_padding` applies beyond them.
_PADDING_FREE = 4

Job = tuple[str, str]  # (model, task)
Lane = tuple[Job, bool]  # (job, bulk)


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


class Request:
    """One `submit`: its sentences' results, in order, on one future of the event loop."""

    __slots__ = ("future", "results", "missing")

    def __init__(self, future: asyncio.Future[list[Any]], size: int) -> None:
        self.future = future
        self.results: list[Any] = [None] * size
        self.missing = size


class Item:
    """One queued sentence. Identity matters: items are found in sets and lists by `is`."""

    __slots__ = ("features", "request", "index", "arrived", "length")

    def __init__(self, features: Features, request: Request, index: int, arrived: float) -> None:
        self.features = features
        self.request = request
        self.index = index  # its place in the request
        self.arrived = arrived
        self.length = features.length  # pieces; read many times while the queue is sorted

    @property
    def gone(self) -> bool:
        """Its request has failed or was cancelled (client disconnect): nobody wants it."""
        return self.request.future.done()


class Queues:
    def __init__(self, jobs: Iterable[Job], limits: BatchLimits) -> None:
        self.limits = limits
        self._lanes: dict[Lane, list[Item]] = {
            (job, bulk): [] for job in jobs for bulk in (False, True)
        }

    @property
    def queued(self) -> int:
        return sum(len(q) for q in self._lanes.values())

    def add(self, lane: Lane, items: list[Item]) -> None:
        self._lanes[lane].extend(items)

    def oldest_arrival(self, lane: Lane) -> float:
        return self._lanes[lane][0].arrived

    def drop_gone(self) -> None:
        """Forget the sentences at the head of each lane whose request has gone (client
        disconnect, failed sibling), so the oldest live one leads; the rest are dropped when a
        batch is taken (a scan of the whole queue on every wake would cost more than the
        batch)."""
        for queue in self._lanes.values():
            gone = 0
            while gone < len(queue) and queue[gone].gone:
                gone += 1
            del queue[:gone]

    def leading(self, model: str) -> Lane | None:
        """The model's lane whose head leads: the oldest sentence outside the bulk lanes, if
        any."""
        heads = [
            (lane[1], q[0].arrived, lane)
            for lane, q in self._lanes.items()
            if q and lane[0][0] == model
        ]
        return min(heads)[2] if heads else None

    def full(self, lane: Lane) -> bool:
        queue = self._lanes[lane]
        if len(queue) >= self.limits.max_batch_size:
            return True
        return sum(item.length for item in queue) >= self.limits.max_batch_tokens

    def take(self, lane: Lane) -> list[Item]:
        """Remove and return a batch: the oldest live sentence plus neighbours by length.

        Pending sentences are sorted by length and the batch is a contiguous run of that order
        that contains the oldest one (so none starves), grown one neighbour at a time, cheaper
        padded size first, while it fits the size and token limits and, beyond its first
        sentences, keeps padding within `max_padding` (ORT's GRU computes every padded step, so
        a batch's cost follows its padded size). A sentence over the token limit on its own
        still runs, alone.
        """
        queue = [item for item in self._lanes[lane] if not item.gone]
        if not queue:
            self._lanes[lane] = []
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
        self._lanes[lane] = [item for item in queue if item not in taken]
        job, bulk = lane
        if not bulk and len(batch) < limits.max_batch_size:
            return self._fill(batch, (job, True))
        return batch

    def _fill(self, batch: list[Item], lane: Lane) -> list[Item]:
        """`batch` and the sentences of the bulk `lane` that fit in it at no longer padded
        length, the longest first, while it keeps within the limits; sorted by length. A bulk
        sentence waits behind every other, but a batch that runs anyway has room for it, and
        bigger batches cost less per sentence."""
        longest, limits = batch[-1].length, self.limits
        spare = sorted(
            (item for item in self._lanes[lane] if not item.gone and item.length <= longest),
            key=_LENGTH,
            reverse=True,
        )
        real = sum(item.length for item in batch)
        extra: list[Item] = []
        for item in spare:  # longest first: once one does not fit, no shorter one does
            size = len(batch) + len(extra) + 1
            padded_ok = size <= _PADDING_FREE or size * longest <= limits.max_padding * (
                real + item.length
            )
            fits = size <= limits.max_batch_size and size * longest <= limits.max_batch_tokens
            if not (fits and padded_ok):
                break
            extra.append(item)
            real += item.length
        if not extra:
            return batch
        taken = set(extra)
        self._lanes[lane] = [item for item in self._lanes[lane] if item not in taken]
        return sorted(batch + extra, key=_LENGTH)
