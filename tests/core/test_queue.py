"""app.core.queue on its own, no threads: which queued sentences make the next batch (the oldest
live one plus neighbours by length, within the size, token and padding limits), which lane
leads (the bulk lane yields), and sentences whose request has gone being dropped."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.config import Settings
from app.core.queue import BatchLimits, Item, Queues, Request
from app.model.featurize import Features

JOBS = [("m", "tag"), ("m", "embed")]  # one model's tasks
TAG, BULK, EMBED = (JOBS[0], False), (JOBS[0], True), (JOBS[1], False)
PADDING_FREE = 4  # a batch this small takes sentences whatever their padding


@pytest.fixture(scope="module")
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    """A loop to make futures on; nothing runs on it."""
    loop = asyncio.new_event_loop()
    yield loop
    loop.close()


def item(loop: asyncio.AbstractEventLoop, length: int, arrived: float, gone: bool = False) -> Item:
    """A sentence of `length` pieces, the one sentence of its request; `gone`: that request was
    cancelled (its client disconnected)."""
    request = Request(loop.create_future(), 1)
    if gone:
        request.future.cancel()
    ids = np.full(length, 1000, dtype=np.int64)
    return Item(
        Features(ids, np.ones(length, np.int64), np.zeros(1, np.int64)), request, 0, arrived
    )


def queues_of(
    loop: asyncio.AbstractEventLoop,
    lengths: list[int],
    lane: tuple[str, bool] = TAG,
    **limits: float,
) -> tuple[Queues, list[Item]]:
    """Queues holding one sentence of each length in `lane`, in that order of arrival."""
    queues = Queues(JOBS, BatchLimits(**limits))
    items = [item(loop, n, float(i)) for i, n in enumerate(lengths)]
    queues.add(lane, items)
    return queues, items


def lengths(batch: list[Item]) -> list[int]:
    return [x.length for x in batch]


def test_an_empty_lane_gives_no_batch(loop: asyncio.AbstractEventLoop) -> None:
    queues, _ = queues_of(loop, [])
    assert queues.take(TAG) == [] and queues.leading("m") is None


def test_the_batch_grows_around_the_oldest_by_similar_length(
    loop: asyncio.AbstractEventLoop,
) -> None:
    queues, items = queues_of(loop, [10, 50, 11, 9, 30, 12])
    batch = queues.take(TAG)
    assert batch[1] is items[0]  # the oldest, among its neighbours sorted by length
    # a fifth sentence of 30 pieces would pad the batch to 150 for 72 real: over 1.25
    assert lengths(batch) == [9, 10, 11, 12]
    assert queues.queued == 2 and lengths(queues.take(TAG)) == [30, 50]


def test_a_shorter_neighbour_comes_first_as_it_adds_no_padded_step(
    loop: asyncio.AbstractEventLoop,
) -> None:
    # beside the oldest (10), 2 pieces pad to 2 x 10 and 11 pieces to 2 x 11
    queues, _ = queues_of(loop, [10, 11, 2], max_batch_size=2)
    assert lengths(queues.take(TAG)) == [2, 10]


def test_max_batch_size(loop: asyncio.AbstractEventLoop) -> None:
    queues, items = queues_of(loop, [5] * 10, max_batch_size=4)
    assert queues.take(TAG) == items[:4]  # equal lengths keep their order of arrival
    assert queues.queued == 6


def test_max_batch_tokens_counts_the_padding(loop: asyncio.AbstractEventLoop) -> None:
    queues, _ = queues_of(loop, [10] * 5, max_batch_tokens=40)
    assert lengths(queues.take(TAG)) == [10] * 4
    queues, _ = queues_of(loop, [10, 15], max_batch_tokens=25)  # 25 real pieces, 30 padded
    assert lengths(queues.take(TAG)) == [10]


def test_a_sentence_over_the_token_limit_runs_alone(loop: asyncio.AbstractEventLoop) -> None:
    queues, _ = queues_of(loop, [100, 5, 5], max_batch_tokens=50)
    assert lengths(queues.take(TAG)) == [100]
    assert lengths(queues.take(TAG)) == [5, 5]


def test_padding_counts_beyond_the_first_few_sentences(loop: asyncio.AbstractEventLoop) -> None:
    # the first four sentences go together whatever their padding (17 real pieces in 24 here);
    # a fifth of 8 pieces beside four of 1 would pad 12 real pieces to 40
    queues, _ = queues_of(loop, [1, 8, 8], max_padding=1.25)
    assert lengths(queues.take(TAG)) == [1, 8, 8]
    queues, _ = queues_of(loop, [1, 1, 1, 1, 8], max_padding=1.25)
    assert lengths(queues.take(TAG)) == [1, 1, 1, 1]
    queues, _ = queues_of(loop, [1, 1, 1, 1, 8], max_padding=4.0)
    assert lengths(queues.take(TAG)) == [1, 1, 1, 1, 8]


def test_gone_sentences_are_never_taken_and_take_forgets_them(
    loop: asyncio.AbstractEventLoop,
) -> None:
    queues = Queues(JOBS[:1], BatchLimits())
    gone = [item(loop, 5, 0.0, gone=True), item(loop, 5, 2.0, gone=True)]
    live = [item(loop, 5, 1.0), item(loop, 5, 3.0)]
    queues.add(TAG, [gone[0], live[0], gone[1], live[1]])
    assert queues.take(TAG) == live
    assert queues.queued == 0


def test_drop_gone_forgets_the_gone_at_the_head_only(loop: asyncio.AbstractEventLoop) -> None:
    queues = Queues(JOBS[:1], BatchLimits())
    head = [item(loop, 5, 0.0, gone=True), item(loop, 5, 1.0, gone=True)]
    rest = [item(loop, 5, 2.0), item(loop, 5, 3.0, gone=True)]
    queues.add(TAG, head + rest)
    queues.drop_gone()
    assert queues.queued == 2 and queues.oldest_arrival(TAG) == 2.0


def test_every_gone_sentence_of_a_lane_leaves_it_to_the_others(
    loop: asyncio.AbstractEventLoop,
) -> None:
    queues = Queues(JOBS, BatchLimits())
    queues.add(TAG, [item(loop, 5, 0.0, gone=True)])
    queues.add(EMBED, [item(loop, 5, 1.0)])
    assert queues.leading("m") == TAG
    queues.drop_gone()
    assert queues.leading("m") == EMBED and queues.queued == 1


def test_the_bulk_lane_yields_to_any_other_sentence(loop: asyncio.AbstractEventLoop) -> None:
    queues = Queues(JOBS, BatchLimits())
    queues.add(BULK, [item(loop, 5, 0.0)])
    assert queues.leading("m") == BULK  # alone, it leads
    queues.add(TAG, [item(loop, 5, 5.0)])
    assert queues.leading("m") == TAG  # though it arrived later
    queues.add(EMBED, [item(loop, 5, 3.0)])
    assert queues.leading("m") == EMBED  # outside the bulk lane, the oldest leads
    assert queues.oldest_arrival(BULK) == 0.0


def test_room_left_in_a_batch_fills_from_the_bulk_lane_no_longer_than_its_longest(
    loop: asyncio.AbstractEventLoop,
) -> None:
    queues, lead = queues_of(loop, [10, 12])
    queues.add(BULK, [item(loop, n, 5.0 + n / 100) for n in (3, 11, 12, 13, 40)])
    batch = queues.take(TAG)
    assert lengths(batch) == [3, 10, 11, 12, 12] and set(lead) <= set(batch)
    assert queues.leading("m") == BULK and lengths(queues.take(BULK)) == [13, 40]
    queues, _ = queues_of(loop, [10], max_batch_size=2)
    queues.add(BULK, [item(loop, n, 5.0) for n in (9, 10)])
    assert lengths(queues.take(TAG)) == [10, 10]  # the longest first, up to the batch size


def test_a_bulk_batch_takes_from_its_own_lane_only(loop: asyncio.AbstractEventLoop) -> None:
    queues, _ = queues_of(loop, [10, 10], lane=BULK)
    queues.add(EMBED, [item(loop, 10, 0.5)])
    assert queues.take(BULK) and queues.queued == 1 and queues.leading("m") == EMBED


def test_a_model_leads_its_own_lanes_only(loop: asyncio.AbstractEventLoop) -> None:
    a, b = ("a", "tag"), ("b", "embed")
    queues = Queues([a, b], BatchLimits())
    queues.add((a, False), [item(loop, 5, 0.0)])
    queues.add((b, True), [item(loop, 5, 1.0)])
    assert queues.leading("a") == (a, False) and queues.leading("b") == (b, True)
    queues.take((b, True))
    assert queues.leading("b") is None and queues.queued == 1


def test_a_lane_is_full_by_count_or_by_pieces(loop: asyncio.AbstractEventLoop) -> None:
    queues, _ = queues_of(loop, [5, 5], max_batch_size=3, max_batch_tokens=100)
    assert not queues.full(TAG)
    queues.add(TAG, [item(loop, 5, 9.0)])
    assert queues.full(TAG)
    queues, _ = queues_of(loop, [60, 40], max_batch_size=3, max_batch_tokens=100)
    assert queues.full(TAG) and not queues.full(EMBED)


def test_limits_come_from_the_settings(make_settings: Callable[..., Settings]) -> None:
    s = make_settings(max_batch_size=3, max_batch_tokens=7, max_wait_ms=2, max_queue=9)
    limits = BatchLimits.from_settings(s)
    assert limits == BatchLimits(3, 7, 2.0, 9, s.max_padding)


def assert_within_limits(batch: list[Item], oldest: Item, limits: BatchLimits) -> None:
    n, real = len(batch), sum(lengths(batch))
    padded = n * max(lengths(batch))
    assert oldest in batch
    assert lengths(batch) == sorted(lengths(batch))
    assert n <= limits.max_batch_size
    assert n == 1 or padded <= limits.max_batch_tokens
    assert n <= PADDING_FREE or padded <= limits.max_padding * real


SENTENCES = st.lists(st.tuples(st.integers(1, 300), st.booleans()), max_size=60)  # length, gone
LIMITS = st.builds(
    lambda size, tokens, padding: BatchLimits(size, tokens, max_padding=padding),
    st.integers(1, 40),
    st.integers(1, 4096),
    st.floats(1.0, 3.0),
)


@settings(max_examples=300, deadline=None)
@given(sentences=SENTENCES, limits=LIMITS)
def test_batches_keep_the_limits_hold_the_oldest_and_take_each_live_sentence_once(
    loop: asyncio.AbstractEventLoop, sentences: list[tuple[int, bool]], limits: BatchLimits
) -> None:
    queues = Queues(JOBS[:1], limits)
    items = [item(loop, n, float(i), gone) for i, (n, gone) in enumerate(sentences)]
    queues.add(TAG, items)
    waiting = [x for x in items if not x.gone]
    while waiting:
        batch = queues.take(TAG)
        assert_within_limits(batch, waiting[0], limits)
        taken = set(batch)
        left = [x for x in waiting if x not in taken]
        assert len(left) == len(waiting) - len(batch)  # each taken from those waiting, once
        # a run of the length order: no sentence left behind lies strictly inside it
        low, high = batch[0].length, batch[-1].length
        assert not [x for x in left if low < x.length < high]
        waiting = left
        assert queues.queued == len(waiting)
    assert queues.take(TAG) == []


@settings(max_examples=300, deadline=None)
@given(
    sentences=st.lists(st.tuples(st.integers(1, 300), st.booleans(), st.booleans()), max_size=60),
    limits=LIMITS,
)
def test_with_both_lanes_the_oldest_outside_the_bulk_lane_leads_every_batch(
    loop: asyncio.AbstractEventLoop,
    sentences: list[tuple[int, bool, bool]],  # length, gone, bulk
    limits: BatchLimits,
) -> None:
    queues = Queues(JOBS[:1], limits)
    items = [item(loop, n, float(i), gone) for i, (n, gone, _) in enumerate(sentences)]
    for x, (_, _, bulk) in zip(items, sentences, strict=True):
        queues.add(BULK if bulk else TAG, [x])
    waiting = [x for x in items if not x.gone]
    in_bulk = {x for x, (_, _, bulk) in zip(items, sentences, strict=True) if bulk}
    while waiting:
        queues.drop_gone()  # as the batcher does before it looks for the leading lane
        lane = queues.leading("m")
        assert lane is not None
        outside = [x for x in waiting if x not in in_bulk]
        oldest = outside[0] if outside else waiting[0]
        assert lane == (TAG if outside else BULK)
        batch = queues.take(lane)
        assert_within_limits(batch, oldest, limits)
        if lane == TAG:  # what rides along from the bulk lane is no longer than the rest
            own = [x for x in batch if x not in in_bulk]
            assert all(x.length <= max(lengths(own)) for x in batch if x in in_bulk)
        left = [x for x in waiting if x not in set(batch)]
        assert len(left) == len(waiting) - len(batch)
        waiting = left


@settings(max_examples=100, deadline=None)
@given(sentences=st.lists(st.integers(1, 300), max_size=60), max_batch_size=st.integers(1, 40))
def test_without_token_or_padding_limits_a_batch_is_as_large_as_allowed(
    loop: asyncio.AbstractEventLoop, sentences: list[int], max_batch_size: int
) -> None:
    limits = BatchLimits(max_batch_size, max_batch_tokens=10**9, max_padding=10**9)
    queues = Queues(JOBS[:1], limits)
    queues.add(TAG, [item(loop, n, float(i)) for i, n in enumerate(sentences)])
    assert len(queues.take(TAG)) == min(max_batch_size, len(sentences))
