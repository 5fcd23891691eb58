"""Pictographs found by rule: emoji (with joiners, variation selectors and skin tones) and the
symbol blocks from the arrows on; not letters, digits, punctuation, currency or math."""

from __future__ import annotations

import pytest

from app.model.symbols import is_pictograph, pictographs


@pytest.mark.parametrize(
    "word", ["🗽", "🎉", "👍", "👍🏽", "👩\u200d👩\u200d👧", "♥", "☺\ufe0f", "🇫🇷"]
)
def test_emoji_and_pictographs(word: str) -> None:
    assert is_pictograph(word)


@pytest.mark.parametrize("word", ["a", ":)", "€", "©", "→", "÷", "café", "日本", "\u200d", "a🎉"])
def test_not_pictographs(word: str) -> None:
    assert not is_pictograph(word)


def test_their_places_among_words() -> None:
    assert pictographs(["Great", "🎉", "party", "👍🏽"]) == [1, 3]
    assert pictographs(["plain", "ascii"]) == []
