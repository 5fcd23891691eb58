"""Scoring sentence segmentation on running text, and the rule baseline it is measured against.

A sentence is its character span, from its first word's start to its last word's end; the
score is the F1 of exact span matches, as spaCy's `sents_f` and the CoNLL 2018 shared task's
`Sentences` count them.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from app.model.text import Token

Spans = set[tuple[int, int]]
_END = re.compile(r"[.!?…]+['\"”’)\]]*$")
_ABBREVIATION = re.compile(
    r"^(?:[A-Z]|Dr|Mr|Mrs|Ms|St|Jr|Sr|Prof|Inc|Co|Corp|Ltd|vs|etc|e\.g|i\.e)\.$"
)


def spans_of(tokens: Sequence[Token], starts: Sequence[int]) -> Spans:
    """The sentences that start at word indices `starts` (the first one 0)."""
    bounds = [*starts, len(tokens)]
    return {
        (tokens[a].start, tokens[b - 1].end)
        for a, b in zip(bounds, bounds[1:], strict=False)
        if b > a
    }


def gold_spans(sentences: Sequence[str], starts: Sequence[int]) -> Spans:
    return {(a, a + len(s.rstrip())) for a, s in zip(starts, sentences, strict=True)}


def rule_starts(tokens: Sequence[Token]) -> list[int]:
    """The baseline: a sentence starts after a word ending in . ! ? (less abbreviations and
    initials) when the next word begins with a capital letter, a digit or a quote."""
    starts = [0] if tokens else []
    for i in range(1, len(tokens)):
        prev, word = tokens[i - 1].text, tokens[i].text
        if (
            _END.search(prev)
            and not _ABBREVIATION.match(prev)
            and (word[0].isupper() or word[0].isdigit() or word[0] in "\"“'‘(")
        ):
            starts.append(i)
    return starts


class SpanCounts:
    """Matched, predicted and gold sentences, summed over texts."""

    def __init__(self) -> None:
        self.matched = self.predicted = self.gold = 0

    def add(self, pred: Spans, gold: Spans) -> None:
        self.matched += len(pred & gold)
        self.predicted += len(pred)
        self.gold += len(gold)

    def f1(self) -> float:
        if not self.matched:
            return 0.0
        p, r = self.matched / self.predicted, self.matched / self.gold
        return 100 * 2 * p * r / (p + r)
