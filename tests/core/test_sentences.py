"""app.core.sentences: a text's sentences, by the real model's segmenter and the per-sentence
limits. One sentence skips the segmenter; several are split where it scores a start; a run over
the limits is cut into windows of whole words; one word over the piece limit is refused."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from app.config import Settings
from app.core.batcher import Batcher
from app.core.errors import InputTooLargeError
from app.core.off_loop import OffLoop
from app.core.queue import BatchLimits
from app.core.sentences import Splitter
from app.metrics import Metrics
from app.model.backend import Backend, OnnxBackend
from app.model.featurize import Features, WordPiece
from app.model.text import tokenize
from tests.fakes import Hooked

pytestmark = pytest.mark.anyio


@pytest.fixture(scope="module")
def backend(model_dir: Path) -> OnnxBackend:
    backend = OnnxBackend(model_dir, ["cpu"], 1)
    if not backend.spec.segmenter:
        pytest.skip("this model has no segmenter")
    return backend


class Runs:
    """The tasks the backend was asked to run, in order."""

    def __init__(self) -> None:
        self.tasks: list[str] = []

    def __call__(self, task: str, batch: list[Features]) -> None:
        self.tasks.append(task)


@asynccontextmanager
async def splitting(
    backend: Backend, settings: Settings, segmenter: bool = True
) -> AsyncIterator[tuple[Splitter, Runs]]:
    """A splitter on a started batcher over `backend`, each run recorded; without `segmenter`,
    as for a model that has none."""
    runs = Runs()
    backends = {"m": Hooked(backend, runs)}
    batcher = Batcher(backends, BatchLimits.from_settings(settings), Metrics(), 1)
    batcher.start()
    off_loop = OffLoop()
    spec = backend.spec
    threshold = spec.segmenter_threshold if segmenter else None
    try:
        model = batcher.for_model("m")
        yield Splitter(model, WordPiece(spec.vocab), settings, threshold, off_loop), runs
    finally:
        await batcher.stop()
        off_loop.close()


async def split(splitter: Splitter, text: str) -> list[int]:
    return (await splitter.split(text, tokenize(text))).tolist()


async def test_one_sentence_skips_the_segmenter(
    backend: OnnxBackend, make_settings: Callable[..., Settings]
) -> None:
    async with splitting(backend, make_settings()) as (splitter, runs):
        assert await split(splitter, "Alice moved to Paris.") == [0]
        assert await split(splitter, "Is it raining in Paris?") == [0]  # final, not before
        assert await split(splitter, "") == [] and await split(splitter, " \n ") == []
    assert runs.tasks == []


async def test_sentences_start_where_the_segmenter_scores_a_start(
    backend: OnnxBackend, make_settings: Callable[..., Settings]
) -> None:
    text = "Alice moved to Paris. She likes it there. Bob stayed home."
    async with splitting(backend, make_settings()) as (splitter, runs):
        starts = await split(splitter, text)
    assert [tokenize(text)[i].text for i in starts] == ["Alice", "She", "Bob"]
    assert runs.tasks == ["segment"]


async def test_a_line_break_before_the_last_word_asks_the_segmenter(
    backend: OnnxBackend, make_settings: Callable[..., Settings]
) -> None:
    async with splitting(backend, make_settings()) as (splitter, runs):
        starts = await split(splitter, "Dear Bob\n\nThanks for the books")
    assert runs.tasks == ["segment"] and starts[0] == 0


async def test_a_signatures_lines_are_sentences_of_their_own(
    backend: OnnxBackend, make_settings: Callable[..., Settings]
) -> None:
    text = "Thanks, see you.\n\nBest regards,\nMichael Chen\nSenior Analyst | Globex Inc."
    async with splitting(backend, make_settings()) as (splitter, _):
        starts = await split(splitter, text)
    assert [tokenize(text)[i].text for i in starts] == ["Thanks", "Best", "Michael", "Senior"]


async def test_a_numbered_lists_items_are_sentences_with_their_numbers(
    backend: OnnxBackend, make_settings: Callable[..., Settings]
) -> None:
    texts = {
        "To install:\n1. Download the file.\n2. Run the installer.\n3. Restart.": [
            "To", "1", "2", "3"],
        "We need three things. 1. A plan. 2. A budget. 3. A team.": ["We", "1", "2", "3"],
        "Things to bring\n1) passport\n2) charger": ["Things", "1", "2"],
    }  # fmt: skip
    async with splitting(backend, make_settings()) as (splitter, _):
        for text, firsts in texts.items():
            starts = await split(splitter, text)
            assert [tokenize(text)[i].text for i in starts] == firsts, text


async def test_a_long_text_is_split_in_windows_of_the_segmenter(
    backend: OnnxBackend, make_settings: Callable[..., Settings]
) -> None:
    """Over 2,000 words (counted off the event loop) and many segmenter windows, fed through
    the bulk lane."""
    text = "Alice moved to Paris. " * 500
    async with splitting(backend, make_settings(max_batch_size=4)) as (splitter, runs):
        starts = await split(splitter, text)
    assert starts == list(range(0, 2500, 5))
    assert set(runs.tasks) == {"segment"} and len(runs.tasks) > 1


async def test_a_run_over_the_word_limit_is_cut_into_windows(
    backend: OnnxBackend, make_settings: Callable[..., Settings]
) -> None:
    text = " ".join(["word"] * 20)  # no boundary anywhere
    async with splitting(backend, make_settings(max_tokens_per_input=8)) as (splitter, runs):
        assert await split(splitter, text) == [0, 8, 16]
        assert await split(splitter, " ".join(["word"] * 8)) == [0]
    assert runs.tasks == []


async def test_a_run_over_the_piece_limit_is_cut_into_whole_words(
    backend: OnnxBackend, make_settings: Callable[..., Settings]
) -> None:
    wordpiece = WordPiece(backend.spec.vocab)
    assert len(wordpiece.word_ids("unaffable")) == 3
    text = " ".join(["unaffable"] * 6)  # 18 pieces
    async with splitting(backend, make_settings(max_pieces_per_input=7)) as (splitter, _):
        assert await split(splitter, text) == [0, 2, 4]  # 6 pieces each: a third word is 9


async def test_one_word_over_the_piece_limit_is_too_large(
    backend: OnnxBackend, make_settings: Callable[..., Settings]
) -> None:
    async with splitting(backend, make_settings(max_pieces_per_input=2)) as (splitter, runs):
        with pytest.raises(InputTooLargeError, match="3 WordPiece pieces; at most 2"):
            await split(splitter, "Alice is unaffable")  # una ##ffa ##ble
    assert runs.tasks == []


async def test_without_a_segmenter_a_text_is_one_sentence_then_cut(
    backend: OnnxBackend, make_settings: Callable[..., Settings]
) -> None:
    settings = make_settings(max_tokens_per_input=6)
    text = "Alice moved to Paris. She likes it there."
    async with splitting(backend, settings, segmenter=False) as (splitter, runs):
        assert await split(splitter, text) == [0, 6]  # where the word limit cuts it
    assert runs.tasks == []
