"""Model scores -> labels: softmax, IOB2-constrained CRF Viterbi and marginals, entity spans,
and lemmas made from the edit scripts a lemma head classifies."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from app.model.featurize import Features
from app.model.lemma import apply_script
from app.model.parse import TreeDecoder
from app.model.symbols import RULE, pictographs

_FORBIDDEN = -1e4  # added to impossible IOB2 moves; finite so logsumexp stays finite
# A score's decimals in the answer: 0.9983 tells what 0.9982736901698096 does, in a third of the
# bytes, and the digits past the fourth differ between batches (sums in another order).
SCORE_DIGITS = 4


def softmax(x: np.ndarray) -> np.ndarray:
    z = np.exp(x - x.max(axis=-1, keepdims=True))
    return z / z.sum(axis=-1, keepdims=True)


def _logsumexp(x: np.ndarray, axis: int) -> np.ndarray:
    m = x.max(axis=axis, keepdims=True)
    return np.squeeze(m, axis) + np.log(np.exp(x - m).sum(axis=axis))


def _times(x: np.ndarray, m: np.ndarray) -> np.ndarray:
    """x @ m for x (B, n), summed in the same order whatever B is: a BLAS matmul rounds
    differently for one row than for many, and a sentence must score the same in any batch."""
    return (x[:, :, None] * m).sum(1)


@dataclass(frozen=True)
class CRFDecoder:
    """A linear-chain CRF over IOB2 labels; impossible moves (O -> I-X, B-X -> I-Y) are barred."""

    labels: list[str]
    transitions: np.ndarray  # (n, n) [from, to]
    start: np.ndarray  # (n,)
    end: np.ndarray  # (n,)

    @classmethod
    def build(cls, labels: list[str], transitions, start, end) -> CRFDecoder:
        trans = np.asarray(transitions, dtype=np.float64).copy()
        first = np.asarray(start, dtype=np.float64).copy()
        for j, to in enumerate(labels):
            if to.startswith("I-"):
                first[j] += _FORBIDDEN
                for i, frm in enumerate(labels):
                    if frm[2:] != to[2:] or frm == "O":
                        trans[i, j] += _FORBIDDEN
        return cls(labels, trans, first, np.asarray(end, dtype=np.float64))

    def viterbi(self, emissions: np.ndarray) -> list[int]:
        """Best label path for one sentence; emissions (W, n)."""
        W = emissions.shape[0]
        return [int(i) for i in self.viterbi_batch(emissions[None], np.array([W]))[0, :W]]

    def viterbi_batch(self, emissions: np.ndarray, lengths: np.ndarray) -> np.ndarray:
        """Best paths of a padded batch, emissions (B, W, n), sentence b's words [:lengths[b]]
        -> (B, W) label ids (0 past each length). One numpy step per word position for the
        whole batch, not per sentence: the padded steps are computed and ignored, as each
        sentence's best path is read back from its own last word."""
        B, W, n = emissions.shape
        if W == 0:
            return np.zeros((B, 0), dtype=np.int64)
        rows = np.arange(B)
        scores = np.empty((B, W, n))  # best score of a path ending in each label at each word
        back = np.empty((B, W, n), dtype=np.int64)  # its previous label
        scores[:, 0] = score = self.start + emissions[:, 0]
        for t in range(1, W):
            cand = score[:, :, None] + self.transitions  # (B, n_from, n_to)
            back[:, t] = cand.argmax(1)
            scores[:, t] = score = cand.max(1) + emissions[:, t]
        last = np.maximum(lengths - 1, 0)
        current = (scores[rows, last] + self.end).argmax(1)  # each sentence's last label
        back[np.arange(W)[None, :] >= lengths[:, None]] = np.arange(n)  # past the end: stay
        path = np.empty((B, W), dtype=np.int64)
        path[:, W - 1] = current
        for t in range(W - 2, -1, -1):
            path[:, t] = current = back[rows, t + 1, current]
        path[np.arange(W)[None, :] >= lengths[:, None]] = 0
        return path

    def marginals(self, emissions: np.ndarray) -> np.ndarray:
        """P(label at word t | sentence), (W, n), by forward-backward."""
        W = emissions.shape[0]
        return self.marginals_batch(emissions[None], np.array([W]))[0, :W]

    def marginals_batch(self, emissions: np.ndarray, lengths: np.ndarray) -> np.ndarray:
        """Marginals of a padded batch (B, W, n) -> (B, W, n), rows past a length undefined.
        In probability space, each step rescaled to sum 1, batched over sentences; a sentence
        whose scores are so far apart that a step underflows to all zeros is redone in log
        space."""
        B, W, n = emissions.shape
        if W == 0:
            return np.zeros((B, 0, n))
        with np.errstate(all="ignore"):  # an underflowed step shows as a non-finite result
            E = np.exp(emissions - emissions.max(2, keepdims=True))  # (B, W, n), row max 1
            M = np.exp(self.transitions - self.transitions.max())  # barred moves -> 0
            MT = np.ascontiguousarray(M.T)
            alpha, beta = np.empty_like(E), np.empty_like(E)
            a = np.exp(self.start - self.start.max()) * E[:, 0]
            alpha[:, 0] = a = a / a.sum(1, keepdims=True)
            for t in range(1, W):
                a = _times(a, M) * E[:, t]
                alpha[:, t] = a = a / a.sum(1, keepdims=True)
            end = np.exp(self.end - self.end.max())
            end = end / end.sum()
            ends = (np.arange(W)[None, :] >= lengths[:, None] - 1)[:, :, None]  # (B, W, 1)
            beta[:, W - 1] = b = end
            for t in range(W - 2, -1, -1):
                b = _times(E[:, t + 1] * b, MT)
                beta[:, t] = b = np.where(ends[:, t], end, b / b.sum(1, keepdims=True))
            m = alpha * beta
            m = m / m.sum(2, keepdims=True)
        for i in range(B):
            k = int(lengths[i])
            if not np.isfinite(m[i, :k]).all():
                m[i, :k] = self._log_marginals(emissions[i, :k])
        return m

    def _log_marginals(self, emissions: np.ndarray) -> np.ndarray:
        W, n = emissions.shape
        alpha = np.zeros((W, n))
        beta = np.zeros((W, n))
        alpha[0] = self.start + emissions[0]
        for t in range(1, W):
            alpha[t] = _logsumexp(alpha[t - 1][:, None] + self.transitions, 0) + emissions[t]
        beta[W - 1] = self.end
        for t in range(W - 2, -1, -1):
            beta[t] = _logsumexp(self.transitions + (emissions[t + 1] + beta[t + 1])[None, :], 1)
        logz = _logsumexp(alpha[W - 1] + self.end, 0)
        return np.exp(alpha + beta - logz)


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
        for i, f in enumerate(features):
            first[i, : lengths[i]] = f.word_starts
            last[i, : lengths[i]] = np.append(f.word_starts[1:], f.length) - 1
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
        ids = head.crf.viterbi_batch(scores, self.lengths)[valid]
        return ids, head.crf.marginals_batch(scores, self.lengths)[valid]

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
