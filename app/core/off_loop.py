"""Work too long for the event loop, on one thread of its own."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

_R = TypeVar("_R")


class OffLoop:
    """Work too long for the event loop (tokenizing a long text, assembling a run's answer), on
    one thread of its own: each thread that allocates gets a malloc arena, which keeps what it
    freed, so a pool of threads would hold several times the memory of one."""

    def __init__(self) -> None:
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="bigru-off-loop")

    async def run(self, work: Callable[..., _R], *args: object) -> _R:
        return await asyncio.get_running_loop().run_in_executor(self._pool, work, *args)

    def close(self) -> None:
        self._pool.shutdown(wait=False)
