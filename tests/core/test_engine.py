"""The engine on the real model and batcher, no HTTP: limits before work, offsets and entities
as assembled, empty input, embeddings, truncation, a tagger without a sentence encoder, and a
full queue refusing at once, without waiting for the model."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import numpy as np
import pytest

from app.config import Settings
from app.core.batcher import Batcher
from app.core.engine import Engine
from app.core.errors import (
    EmptyInputError,
    InputTooLargeError,
    InvalidInputError,
    NoSentenceEncoderError,
    OverloadedError,
)
from app.core.off_loop import OffLoop
from app.core.queue import BatchLimits
from app.metrics import Metrics
from app.model.backend import Backend, OnnxBackend
from app.model.featurize import Features
from tests.fakes import FakeBackend, Hooked
from tests.helpers import fake_spec

pytestmark = pytest.mark.anyio
LIMITS = {"max_inputs_per_request": 3, "max_chars_per_input": 200, "max_tokens_per_input": 8}


@pytest.fixture(scope="module")
def backend(model_dir: Path) -> OnnxBackend:
    return OnnxBackend(model_dir, ["cpu"], 1)


@pytest.fixture
async def engine(
    backend: OnnxBackend, make_settings: Callable[..., Settings]
) -> AsyncIterator[Engine]:
    async with running(backend, make_settings(**LIMITS)) as engine:
        yield engine


@asynccontextmanager
async def running(backend: Backend, settings: Settings) -> AsyncIterator[Engine]:
    """An engine on a started batcher of one worker."""
    limits = BatchLimits.from_settings(settings)
    batcher = Batcher({"m": backend}, limits, Metrics(), 1)
    batcher.start()
    off_loop = OffLoop()
    try:
        yield Engine(
            "m", backend.spec, batcher.for_model("m"), settings, backend.providers, off_loop
        )
    finally:
        await batcher.stop()
        off_loop.close()


def runs(engine: Engine) -> float:
    sample = engine.batcher.batcher.metrics.registry.get_sample_value
    labels = ({"task": task, "model": "m"} for task in ("tag", "embed"))
    return sum(sample("bigru_ort_runs_total", each) or 0 for each in labels)


async def test_raw_text_has_offsets_into_it_and_entities_are_its_slices(engine: Engine) -> None:
    text = "Barack Obama visited  Paris."
    [tagged] = await engine.tag_texts([text])
    assert [text[t["start"] : t["end"]] for t in tagged.tokens] == [
        t["text"] for t in tagged.tokens
    ]
    heads = [
        key
        for h in engine.spec.heads
        for key in (*(["head"] if h.decoder == "tree" else []), h.name, f"{h.name}_score")
    ]
    assert list(tagged.tokens[0]) == ["text", "start", "end", *heads]
    assert {(e.text, e.label) for e in tagged.entities} == {
        ("Barack Obama", "PER"),
        ("Paris", "LOC"),
    }
    for e in tagged.entities:
        assert text[e.start : e.end] == e.text and 0 < e.score <= 1


async def test_pre_tokenized_words_have_no_offsets(engine: Engine) -> None:
    [tagged] = await engine.tag_tokens([["New", "York", "is", "big"]])
    assert [(t["text"], t["start"], t["end"]) for t in tagged.tokens][:2] == [
        ("New", None, None),
        ("York", None, None),
    ]
    [entity] = tagged.entities
    assert (entity.text, entity.start, entity.token_start, entity.token_end) == (
        "New York",
        None,
        0,
        2,
    )


async def test_empty_text_gives_nothing_without_a_run(engine: Engine) -> None:
    before = runs(engine)
    tagged = await engine.tag_texts(["", "   "])
    assert [(t.tokens, t.entities, t.sentences) for t in tagged] == [([], [], [])] * 2
    assert runs(engine) == before
    with pytest.raises(EmptyInputError, match="input 1"):
        await engine.embed(["fine", " "], normalize=True)


@pytest.mark.parametrize(
    ("texts", "message"),
    [
        (["a"] * 4, "4 inputs; at most 3"),
        (["x" * 201], "201 characters; at most 200"),
        (["one two three four five six seven eight nine"], "9 tokens; at most 8"),
    ],
)
async def test_embed_limits_refuse_before_any_run(
    engine: Engine, texts: list[str], message: str
) -> None:
    before = runs(engine)
    with pytest.raises(InputTooLargeError, match=message):
        await engine.embed(texts, normalize=True)
    assert runs(engine) == before


async def test_a_text_to_tag_has_no_size_limit_but_the_count(engine: Engine) -> None:
    with pytest.raises(InputTooLargeError, match="4 inputs; at most 3"):
        await engine.tag_texts(["a"] * 4)
    words = "one two three four five six seven eight nine ten eleven twelve thirteen"
    [tagged] = await engine.tag_texts([f"{words} {'x' * 180}"])
    # a run over the 8-token limit with no boundary is cut into sentences of at most 8
    assert [(s.token_start, s.token_end) for s in tagged.sentences] == [(0, 8), (8, 14)]
    assert [t["text"] for t in tagged.tokens][-1] == "x" * 180


async def test_pieces_are_counted_after_featurizing(
    backend: OnnxBackend, make_settings: Callable[..., Settings]
) -> None:
    async with running(backend, make_settings(max_pieces_per_input=10)) as engine:
        with pytest.raises(InputTooLargeError, match="WordPiece pieces; at most 10"):
            await engine.tag_tokens([["a.a.a.a.a.a"]])


async def test_embeddings_are_unit_length_unless_asked_not_to_be(engine: Engine) -> None:
    unit = await engine.embed(["Alice moved to Paris.", "Bob"], normalize=True)
    raw = await engine.embed(["Alice moved to Paris.", "Bob"], normalize=False)
    assert unit.vectors.dtype == np.float32 and unit.vectors.shape[0] == 2
    np.testing.assert_allclose(np.linalg.norm(unit.vectors, axis=1), 1, rtol=1e-5)
    norms = np.linalg.norm(raw.vectors, axis=1, keepdims=True)
    np.testing.assert_allclose(raw.vectors / norms, unit.vectors, rtol=1e-5, atol=1e-6)
    assert unit.pieces == raw.pieces > 2


async def test_truncation_keeps_the_end_it_is_asked_to(engine: Engine) -> None:
    words = "one two three four five six seven eight nine ten"
    right = await engine.embed([words], normalize=True, truncate="right")
    left = await engine.embed([words], normalize=True, truncate="left")
    first = await engine.embed(["one two three four five six seven eight"], normalize=True)
    last = await engine.embed(["three four five six seven eight nine ten"], normalize=True)
    np.testing.assert_allclose(right.vectors, first.vectors, atol=1e-6)
    np.testing.assert_allclose(left.vectors, last.vectors, atol=1e-6)


def never_run(task: str, batch: list[Features]) -> None:
    raise AssertionError("not run")


async def test_a_tagger_only_model_refuses_to_embed(make_settings: Callable[..., Settings]) -> None:
    tagger_only = FakeBackend(spec=fake_spec(embedding_dim=None), hook=never_run)
    async with running(tagger_only, make_settings()) as engine:
        assert engine.spec.tasks == ["tag"] and engine.entity_labels == []
        with pytest.raises(NoSentenceEncoderError, match="no sentence encoder"):
            await engine.embed(["Alice"], normalize=True)


class Gate:
    """Holds each run until the test opens it."""

    def __init__(self) -> None:
        self.opened = threading.Event()
        self.entered = threading.Event()

    def __call__(self, task: str, batch: list[Features]) -> None:
        self.entered.set()
        self.opened.wait(30)


async def test_a_full_queue_refuses_text_at_once_without_waiting_for_the_model(
    backend: OnnxBackend, make_settings: Callable[..., Settings]
) -> None:
    gate = Gate()
    async with running(Hooked(backend, gate), make_settings(max_queue=2)) as engine:
        running_batch = asyncio.ensure_future(engine.tag_tokens([["One", "."]]))
        await asyncio.to_thread(gate.entered.wait, 10)  # the one worker is held in its run
        queued = asyncio.ensure_future(engine.tag_tokens([["Two", "."], ["Three", "."]]))
        deadline = time.monotonic() + 10
        while engine.batcher.batcher.queued < 2:
            assert time.monotonic() < deadline, "the second request never queued"
            await asyncio.sleep(0.001)
        # the model is held, so an answer within the timeout can only be a refusal made first
        with pytest.raises(OverloadedError):
            await asyncio.wait_for(engine.tag_texts(["Four is here. Five too."]), timeout=5)
        with pytest.raises(OverloadedError):
            await asyncio.wait_for(engine.tag_tokens([["Six", "."]]), timeout=5)
        gate.opened.set()
        answers = await asyncio.gather(running_batch, queued)
    assert [len(a) for a in answers] == [1, 2]


async def test_dimensions_keep_the_first_components_renormalized(engine: Engine) -> None:
    texts = ["Alice moved to Paris.", "Bob"]
    full = await engine.embed(texts, normalize=False)
    short = await engine.embed(texts, normalize=True, dimensions=64)
    assert short.vectors.shape == (2, 64)
    prefix = full.vectors[:, :64]
    expected = prefix / np.linalg.norm(prefix, axis=1, keepdims=True)
    np.testing.assert_allclose(short.vectors, expected, rtol=1e-5, atol=1e-6)
    raw = await engine.embed(texts, normalize=False, dimensions=64)
    np.testing.assert_allclose(raw.vectors, prefix, rtol=1e-6)


@pytest.mark.parametrize("dimensions", [0, -1, 385])
async def test_dimensions_outside_the_vector_are_invalid(engine: Engine, dimensions: int) -> None:
    with pytest.raises(InvalidInputError, match="dimensions must be between 1 and 384"):
        await engine.embed(["Alice"], normalize=True, dimensions=dimensions)
