"""Admission by memory: what the requests in flight may hold at once, in one process.

Every request with a body holds, from before its body is read until its answer is written, a
share of the process's budget sized by its body (`request_cost`). The constants bound what the
largest requests of the worst kinds were measured to hold above a warmed-up process's peak
(tests/test_memory_bound.py measures them: documents of one-letter sentences, of commas, of
one entity in two words, lists of the longest pre-tokenized sentences), with the service
writing every answer part by part (app.core.runs), so that none holds a document's worth of
answer at once. docs/deploy.md has the figures.

The budget is the process's share of the memory limit (the cgroup's, app.memory, or
BIGRU_MEMORY_LIMIT_MB), `BIGRU_MEMORY_TARGET` of it, less the most the process has held once
warmed up (its peak resident memory after a warm-up that has run batches of the largest size on
every worker: the working set of serving, which it frees and takes again) and its share of the
supervisor's. A request that does not fit waits, first fit,
for up to BIGRU_ADMISSION_TIMEOUT seconds and is then refused (OverloadedError, 429); one that
could never fit is refused at once (InputTooLargeError, 413).
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from dataclasses import dataclass

from app.core.errors import InputTooLargeError, OverloadedError
from app.memory import give_back_memory

log = logging.getLogger(__name__)

MiB = 1 << 20
REQUEST_BYTES = MiB // 4  # a request's own, whatever its body: buffers, its answer's writer
BODY_FACTOR = 44  # bytes held per byte of body, at most (see the module's note)
RUNS_BYTES = 32 * MiB  # a long answer's runs in flight (app.core.runs) and their batches
RUNS_FACTOR = 128  # ...no more than this per byte of body: a short request has one small run
MIN_BUDGET = 16 * MiB  # what a process admits even when the limit leaves it less
TRIM_AFTER = 8 * MiB  # a request that held this much gives freed memory back when it ends


@dataclass(frozen=True)
class Sizing:
    """How a process's budget was computed, for /info and the log."""

    limit: int | None  # bytes the container (or machine) may use; None: unknown
    processes: int
    target: float  # the share of the limit the processes plan to use
    idle: int  # the most this process has held, warmed up (its peak resident bytes)
    supervisor: int  # this process's share of the supervisor's resident bytes
    budget: int | None  # bytes requests may hold at once in this process; None: no bound

    @classmethod
    def compute(
        cls, limit: int | None, processes: int, target: float, idle: int, supervisor: int
    ) -> Sizing:
        budget = None
        if limit is not None:
            budget = max(MIN_BUDGET, int(limit * target / processes) - idle - supervisor)
        return cls(limit, processes, target, idle, supervisor, budget)


def request_cost(body_bytes: int) -> int:
    """What a request with a body of `body_bytes` may hold at most: its own, its runs in
    flight (no more than its body would make), and what its body makes."""
    runs = min(RUNS_BYTES, RUNS_FACTOR * body_bytes)
    return REQUEST_BYTES + runs + BODY_FACTOR * body_bytes


class MemoryBudget:
    """Bytes held by requests in flight, within `budget` bytes (None: no bound)."""

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        self.budget: int | None = None
        self.held = 0
        self._waiting: deque[tuple[int, asyncio.Future[None]]] = deque()

    async def acquire(self, n: int) -> None:
        """Hold `n` bytes, once they fit; `release` them when done."""
        if self.budget is not None and n > self.budget:
            raise InputTooLargeError(
                f"this request needs {n // MiB} MiB of memory to serve; a server process has "
                f"{self.budget // MiB} MiB for requests: send it in smaller parts"
            )
        if not self._fits(n) or self._waiting:
            await self._wait(n)
        else:
            self.held += n

    def release(self, n: int) -> None:
        self.held -= n
        if n >= TRIM_AFTER:
            give_back_memory()
        self._admit()

    def _fits(self, n: int) -> bool:
        return self.budget is None or self.held + n <= self.budget

    async def _wait(self, n: int) -> None:
        """Until `n` bytes are admitted (first fit, oldest first), or the timeout."""
        entry = (n, asyncio.get_running_loop().create_future())
        self._waiting.append(entry)
        self._admit()  # it may fit now, if others waited only for larger amounts
        try:
            await asyncio.wait_for(asyncio.shield(entry[1]), self.timeout)
        except TimeoutError:
            if entry[1].done():  # admitted as the timeout fell: keep it
                return
            self._waiting.remove(entry)
            entry[1].cancel()
            raise OverloadedError(
                f"the requests in flight hold this server process's memory for requests "
                f"({(self.budget or 0) // MiB} MiB); retry"
            ) from None
        except asyncio.CancelledError:
            if entry[1].done() and not entry[1].cancelled():
                self.release(n)  # admitted, but its client is gone
            elif entry in self._waiting:
                self._waiting.remove(entry)
            raise

    def _admit(self) -> None:
        """Admit each waiting request that fits now, oldest first."""
        for entry in list(self._waiting):
            n, future = entry
            if self._fits(n):
                self._waiting.remove(entry)
                self.held += n
                future.set_result(None)
