"""Model scores -> labels: softmax, IOB2-constrained CRF Viterbi and marginals, entity spans."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

_FORBIDDEN = -1e4  # added to impossible IOB2 moves; finite so logsumexp stays finite


def softmax(x: np.ndarray) -> np.ndarray:
    z = np.exp(x - x.max(axis=-1, keepdims=True))
    return z / z.sum(axis=-1, keepdims=True)


def _logsumexp(x: np.ndarray, axis: int) -> np.ndarray:
    m = x.max(axis=axis, keepdims=True)
    return np.squeeze(m, axis) + np.log(np.exp(x - m).sum(axis=axis))


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
        if W == 0:
            return []
        score = self.start + emissions[0]
        back = np.zeros((W, len(self.labels)), dtype=np.int64)
        for t in range(1, W):
            cand = score[:, None] + self.transitions  # (n_from, n_to)
            back[t] = cand.argmax(0)
            score = cand.max(0) + emissions[t]
        path = [int((score + self.end).argmax())]
        for t in range(W - 1, 0, -1):
            path.append(int(back[t, path[-1]]))
        return path[::-1]

    def marginals(self, emissions: np.ndarray) -> np.ndarray:
        """P(label at word t | sentence), (W, n), by forward-backward. In probability space,
        each step rescaled to sum 1 (a few numpy calls per word, on the request path); in
        log space when scores are so far apart that a step underflows to all zeros."""
        W, _ = emissions.shape
        with np.errstate(all="ignore"):  # an underflowed step shows as a non-finite result
            E = np.exp(emissions - emissions.max(1, keepdims=True))  # (W, n), row max 1
            M = np.exp(self.transitions - self.transitions.max())  # barred moves -> 0
            alpha, beta = np.empty_like(E), np.empty_like(E)
            a = np.exp(self.start - self.start.max()) * E[0]
            alpha[0] = a / a.sum()
            for t in range(1, W):
                a = (alpha[t - 1] @ M) * E[t]
                alpha[t] = a / a.sum()
            b = np.exp(self.end - self.end.max())
            beta[W - 1] = b / b.sum()
            for t in range(W - 2, -1, -1):
                b = M @ (E[t + 1] * beta[t + 1])
                beta[t] = b / b.sum()
            m = alpha * beta
            m = m / m.sum(1, keepdims=True)
        return m if np.isfinite(m).all() else self._log_marginals(emissions)

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
class WordTags:
    """Labels and scores of one sentence, one entry per word."""

    upos: list[str]
    upos_scores: list[float]
    ner: list[str]
    ner_scores: list[float]  # CRF marginal probability of the chosen label


@dataclass(frozen=True)
class TagDecoder:
    upos_labels: list[str]
    crf: CRFDecoder

    def decode(
        self, upos_logits: np.ndarray, ner_logits: np.ndarray, word_starts: np.ndarray
    ) -> WordTags:
        """Per-piece logits (T, U), (T, N) of one sentence -> labels of each word's first piece."""
        upos_p = softmax(upos_logits[word_starts].astype(np.float64))  # (W, U)
        upos_ids = upos_p.argmax(-1)
        emissions = ner_logits[word_starts].astype(np.float64)  # (W, N)
        path = self.crf.viterbi(emissions)
        marg = self.crf.marginals(emissions) if len(path) else np.zeros((0, len(self.crf.labels)))
        return WordTags(
            upos=[self.upos_labels[i] for i in upos_ids],
            upos_scores=[float(upos_p[w, i]) for w, i in enumerate(upos_ids)],
            ner=[self.crf.labels[i] for i in path],
            ner_scores=[float(marg[w, i]) for w, i in enumerate(path)],
        )
