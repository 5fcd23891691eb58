"""Model scores -> labels: softmax, the CRF (app.model.crf), entity spans, and lemmas made
from the edit scripts a lemma head classifies."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from app.model.crf import CRFDecoder
from app.model.featurize import Features
from app.model.lemma import apply_script
from app.model.parse import TreeDecoder
from app.model.symbols import RULE, pictographs

# A score's decimals in the answer: 0.9983 tells what 0.9982736901698096 does, in a third of the
# bytes, and the digits past the fourth differ between batches (sums in another order).
SCORE_DIGITS = 4


def softmax(x: np.ndarray) -> np.ndarray:
    z = np.exp(x - x.max(axis=-1, keepdims=True))
    return z / z.sum(axis=-1, keepdims=True)


@dataclass(frozen=True)
class Span:
    label: str
    start: int  # first word
    end: int  # exclusive


def iob2_spans(tags: list[str]) -> list[Span]:
    """Entity spans of a valid IOB2 sequence (a stray I-X opens a span, conlleval-style)."""
    spans: list[Span] = []
    label, begin = None, 0
    for i, tag in enumerate([*tags, "O"]):
        continues = tag.startswith("I-") and tag[2:] == label
        if label is not None and not continues:
            spans.append(Span(label, begin, i))
            label = None
        if tag != "O" and not continues:
            label, begin = tag[2:], i
    return spans


@dataclass(frozen=True)
class HeadTags:
    """One head's labels and scores of one sentence, one entry per word."""

    labels: list[str]
    scores: list[float]  # softmax probability, or CRF marginal probability, of the label
    # a tree head's: each word's head, by its index among the words (the root's is its own)
    heads: list[int] | None = None

    def rounded(self) -> HeadTags:
        """The scores to SCORE_DIGITS decimals."""
        return HeadTags(self.labels, np.round(self.scores, SCORE_DIGITS).tolist(), self.heads)

    def slice(self, a: int, b: int) -> HeadTags:
        """Words [a, b); a tree's heads then count from a."""
        heads = None if self.heads is None else [h - a for h in self.heads[a:b]]
        return HeadTags(self.labels[a:b], self.scores[a:b], heads)


WordTags = dict[str, HeadTags]  # head name -> its tags, in the model's head order


class Refiner(Protocol):
    """What refines some heads' tags from the words (app.model.lexicon)."""

    @property
    def heads(self) -> tuple[str, ...]: ...

    def refine(
        self, words: Sequence[str], upos: np.ndarray, probs: dict[str, np.ndarray]
    ) -> dict[str, HeadTags]:
        """`heads`' tags of N words (of any sentences) from the words, their UPOS label ids
        (N,) and those heads' probabilities (N, n)."""
        ...


@dataclass(frozen=True)
class HeadDecoder:
    """One head: a CRF, or the argmax of a softmax (crf None), over its scores at each word's
    first piece, or (`last_piece`) at its first and last pieces summed. A `lemma` head's labels
    are edit scripts: each word's answer is the lemma its script makes of it."""

    name: str
    labels: list[str]
    crf: CRFDecoder | None = None
    last_piece: bool = False
    lemma: bool = False
    tree: TreeDecoder | None = None  # a dependency head's, which reads `output`
    output: str = ""  # the graph output it reads; "": `<name>_logits`


@dataclass(frozen=True)
class TagDecoder:
    """Each head's decoder, in head order, and what refines some heads from the words."""

    heads: list[HeadDecoder]
    refiner: Refiner | None = None

    def decode(self, logits: dict[str, np.ndarray], features: Features) -> WordTags:
        """Per-piece logits {head: (T, n)} of one sentence -> its words' labels."""
        return self.decode_batch({k: v[None] for k, v in logits.items()}, [features])[0]

    def decode_batch(
        self, logits: dict[str, np.ndarray], features: list[Features]
    ) -> list[WordTags]:
        """A padded batch's logits {head: (B, T, n)} and its sentences -> the labels of each
        sentence's words, of the heads any sentence asks for (`Features.heads`); a CRF runs
        once over the whole batch, a refiner once over its words."""
        pieces = _WordPieces.of(features)
        wanted = self._wanted(features)
        refiner = self.refiner  # when a head it answers is wanted
        if refiner is not None and wanted.isdisjoint(refiner.heads):
            refiner = None
        refined = refiner.heads if refiner is not None else ()
        needed = wanted | ({"upos", *refined} if refiner is not None else set())  # UPOS refines
        word_probs: dict[str, np.ndarray] = {}  # a refined head's (N, n), every word in order
        tags: dict[str, HeadTags] = {}  # each head's tags of every word in order
        upos_ids = np.zeros(0, dtype=np.int64)
        for head in self.heads:
            if head.name not in needed:
                continue
            scores = logits[head.output or f"{head.name}_logits"]
            if head.tree is not None:
                tags[head.name] = pieces.parse(head, head.tree, scores)
                continue
            ids, probs = pieces.decode(head, scores)
            if head.name in refined:
                word_probs[head.name] = probs
            else:
                best = probs[np.arange(len(ids)), ids].tolist()
                tags[head.name] = HeadTags([head.labels[k] for k in ids.tolist()], best)
            if head.name == "upos":
                upos_ids = ids
        lemma_heads = [h.name for h in self.heads if h.lemma and h.name in needed]
        ruled = {h.name: RULE[h.name] for h in self.heads if RULE.get(h.name) in h.labels}
        by_words = refiner or lemma_heads or not needed.isdisjoint(ruled)
        words = [w for f in features for w in f.words] if by_words else []
        if refiner is not None:
            tags |= refiner.refine(words, upos_ids, word_probs)
        for name in lemma_heads:  # the words' lemmas, made by their scripts
            if name in tags:
                scripts = tags[name]
                lemmas = [apply_script(w, s) for w, s in zip(words, scripts.labels, strict=True)]
                tags[name] = HeadTags(lemmas, scripts.scores)
        if places := pictographs(words):
            tags = _pictographs(tags, words, places, ruled, lemma_heads)
        order = [h.name for h in self.heads if h.name in tags]
        answered = {name: tags[name].rounded() for name in order}
        return [{name: answered[name].slice(a, b) for name in order} for a, b in pieces.spans()]

    def _wanted(self, features: list[Features]) -> set[str]:
        """The heads any of the sentences asks for."""
        every = {h.name for h in self.heads}
        if any(f.heads is None for f in features):
            return every
        return every & set().union(*(f.heads for f in features if f.heads is not None))


def _pictographs(
    tags: dict[str, HeadTags],
    words: list[str],
    places: list[int],
    ruled: dict[str, str],
    lemma_heads: list[str],
) -> dict[str, HeadTags]:
    """`tags` with the rule's labels (app.model.symbols) at the pictographs' `places`, scored
    1: a rule's answer, not a probability."""
    out = dict(tags)
    for name, head in tags.items():
        if name not in ruled and name not in lemma_heads:
            continue
        labels, scores = list(head.labels), list(head.scores)
        for i in places:
            labels[i] = ruled.get(name, words[i])  # a lemma head: the word itself
            scores[i] = 1.0
        out[name] = HeadTags(labels, scores, head.heads)
    return out


@dataclass(frozen=True)
class _WordPieces:
    """Where a padded batch's words are: each sentence's word count (B,), and its words' first
    and last pieces (B, W), padded with piece 0 (ignored past its length)."""

    lengths: np.ndarray
    first: np.ndarray
    last: np.ndarray

    @classmethod
    def of(cls, features: list[Features]) -> _WordPieces:
        lengths = np.array([len(f.word_starts) for f in features], dtype=np.int64)
        W = int(lengths.max()) if len(features) else 0
        first = np.zeros((len(features), W), dtype=np.int64)
        last = np.zeros((len(features), W), dtype=np.int64)
        if features:
            real = np.arange(W)[None, :] < lengths[:, None]  # (B, W), row by row
            starts = np.concatenate([f.word_starts for f in features])  # (N,)
            # a word's last piece: the next word's first less one, or its sentence's last
            ends = np.empty_like(starts)
            ends[:-1] = starts[1:]
            pieces = np.array([f.length for f in features], dtype=np.int64)
            has = lengths > 0
            ends[np.cumsum(lengths)[has] - 1] = pieces[has]
            first[real], last[real] = starts, ends - 1
        return cls(lengths, first, last)

    def spans(self) -> list[tuple[int, int]]:
        """Each sentence's words among all the batch's words, in order."""
        ends = np.cumsum(self.lengths).tolist()
        return list(zip([0, *ends], ends, strict=False))

    def decode(self, head: HeadDecoder, logits: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """A head's label ids (N,) and probabilities (N, n) of every real word, in order, from
        its per-piece logits (B, T, n)."""
        rows = np.arange(len(self.lengths))[:, None]
        valid = np.arange(self.first.shape[1])[None, :] < self.lengths[:, None]  # (B, W)
        scores = logits[rows, self.first].astype(np.float64)  # (B, W, n)
        if head.last_piece:
            scores += logits[rows, self.last]
        if head.crf is None:  # softmax over the real words only
            probs = softmax(scores[valid])  # (N, n)
            return probs.argmax(-1), probs
        paths, marginals = head.crf.decode_batch(scores, self.lengths)
        return paths[valid], marginals[valid]

    def parse(self, head: HeadDecoder, tree: TreeDecoder, features: np.ndarray) -> HeadTags:
        """Every real word's head and relation, in order, from the parsing layer's per-piece
        features (B, T, F); heads count among all the batch's words."""
        labels: list[str] = []
        scores: list[float] = []
        heads: list[int] = []
        for i, n in enumerate(self.lengths.tolist()):
            words = features[i, self.first[i, :n]] + features[i, self.last[i, :n]]
            found = tree.parse(words)
            heads += (found.heads + len(labels)).tolist()
            labels += [head.labels[k] for k in found.relations.tolist()]
            scores += found.scores.tolist()
        return HeadTags(labels, scores, heads)
