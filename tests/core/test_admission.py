"""The memory budget: what fits goes at once, first fit; what waits too long is a 429, what can
never fit a 413; a client that leaves gives its share back (app.core.admission)."""

from __future__ import annotations

import asyncio

import pytest

from app.core.admission import (
    BODY_FACTOR,
    MIN_BUDGET,
    REQUEST_BYTES,
    RUNS_BYTES,
    RUNS_FACTOR,
    MemoryBudget,
    MiB,
    Sizing,
    request_cost,
)
from app.core.errors import InputTooLargeError, OverloadedError

pytestmark = pytest.mark.anyio


def budget(size: int | None, timeout: float = 5.0) -> MemoryBudget:
    memory = MemoryBudget(timeout)
    memory.budget = size
    return memory


async def test_what_fits_is_held_at_once_and_given_back() -> None:
    memory = budget(100)
    await memory.acquire(60)
    await memory.acquire(40)
    assert memory.held == 100
    memory.release(60)
    memory.release(40)
    assert memory.held == 0


async def test_no_budget_bounds_nothing() -> None:
    memory = budget(None)
    await memory.acquire(10**15)
    assert memory.held == 10**15


async def test_a_request_larger_than_the_budget_is_refused_at_once() -> None:
    with pytest.raises(InputTooLargeError, match="needs 2 MiB .* has 1 MiB"):
        await budget(MiB).acquire(2 * MiB)


async def test_a_waiting_request_goes_when_room_frees_and_smaller_ones_fit_past_it() -> None:
    memory = budget(100)
    await memory.acquire(70)
    large = asyncio.ensure_future(memory.acquire(50))
    await asyncio.sleep(0)
    assert not large.done()
    await asyncio.wait_for(memory.acquire(20), timeout=1)  # fits now: first fit
    memory.release(70)
    await asyncio.wait_for(large, timeout=1)
    assert memory.held == 70


async def test_a_request_that_waits_past_the_timeout_is_a_429_and_is_forgotten() -> None:
    memory = budget(100, timeout=0.05)
    await memory.acquire(100)
    with pytest.raises(OverloadedError, match="retry"):
        await memory.acquire(10)
    memory.release(100)
    assert memory.held == 0  # the timed-out request was not admitted afterwards


async def test_a_cancelled_waiter_leaves_the_queue_and_holds_nothing() -> None:
    memory = budget(100)
    await memory.acquire(100)
    waiter = asyncio.ensure_future(memory.acquire(30))
    await asyncio.sleep(0)
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    memory.release(100)
    assert memory.held == 0
    await asyncio.wait_for(memory.acquire(100), timeout=1)


def test_the_budget_is_the_process_share_less_what_it_holds() -> None:
    sizing = Sizing.compute(1024 * MiB, 2, 0.8, idle=250 * MiB, supervisor=50 * MiB)
    assert sizing.budget == int(1024 * MiB * 0.8 / 2) - 300 * MiB
    tight = Sizing.compute(512 * MiB, 2, 0.8, idle=250 * MiB, supervisor=50 * MiB)
    assert tight.budget == MIN_BUDGET
    assert Sizing.compute(None, 1, 0.8, idle=1, supervisor=0).budget is None


def test_a_request_costs_its_own_its_runs_and_a_share_per_byte_of_body() -> None:
    assert request_cost(0) == REQUEST_BYTES
    assert request_cost(1000) == REQUEST_BYTES + 1000 * (RUNS_FACTOR + BODY_FACTOR)
    big = 2 * MiB
    assert request_cost(big) == REQUEST_BYTES + RUNS_BYTES + big * BODY_FACTOR
