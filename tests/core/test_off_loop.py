"""app.core.off_loop: work runs on one thread of its own, never the event loop's, which goes on
serving meanwhile; results and errors come back to the caller."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator

import pytest

from app.core.off_loop import OffLoop

pytestmark = pytest.mark.anyio


@pytest.fixture
def off_loop() -> Iterator[OffLoop]:
    pool = OffLoop()
    yield pool
    pool.close()


async def test_work_runs_off_the_loop_always_on_the_same_thread(off_loop: OffLoop) -> None:
    threads = [await off_loop.run(threading.current_thread) for _ in range(5)]
    assert len(set(threads)) == 1
    assert threads[0] is not threading.current_thread()
    assert threads[0].name.startswith("bigru-off-loop")


async def test_arguments_go_in_and_results_come_back(off_loop: OffLoop) -> None:
    assert await off_loop.run(divmod, 17, 5) == (3, 2)


async def test_an_error_reaches_the_caller_and_the_thread_serves_on(off_loop: OffLoop) -> None:
    with pytest.raises(ZeroDivisionError):
        await off_loop.run(divmod, 1, 0)
    assert await off_loop.run(sum, [1, 2]) == 3


async def test_the_loop_serves_while_work_runs(off_loop: OffLoop) -> None:
    started, release = threading.Event(), threading.Event()

    def long_work() -> str:
        started.set()
        assert release.wait(10), "never released"
        return "done"

    work = asyncio.ensure_future(off_loop.run(long_work))
    assert await asyncio.to_thread(started.wait, 10)
    # the loop runs other coroutines while the work holds its thread
    assert await asyncio.wait_for(asyncio.sleep(0, "served"), timeout=5) == "served"
    assert not work.done()
    release.set()
    assert await asyncio.wait_for(work, timeout=10) == "done"


async def test_close_refuses_more_work_without_waiting_for_the_running_one() -> None:
    pool, started, release = OffLoop(), threading.Event(), threading.Event()

    def long_work() -> bool:
        started.set()
        return release.wait(10)

    running = asyncio.ensure_future(pool.run(long_work))
    assert await asyncio.to_thread(started.wait, 10)
    pool.close()  # returns at once, though the work still runs
    assert not running.done()
    with pytest.raises(RuntimeError):
        await pool.run(sum, [1])
    release.set()
    assert await asyncio.wait_for(running, timeout=10) is True
