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
        -> (B, W) label ids (garbage past each length). One numpy step per word position
        for the whole batch, not per sentence."""
        B, W, n = emissions.shape
        if W == 0:
            return np.zeros((B, 0), dtype=np.int64)
        score = self.start + emissions[:, 0]  # (B, n)
        back = np.zeros((B, W, n), dtype=np.int64)
        for t in range(1, W):
            cand = score[:, :, None] + self.transitions  # (B, n_from, n_to)
            back[:, t] = cand.argmax(1)
            step = cand.max(1) + emissions[:, t]
            score = np.where((t < lengths)[:, None], step, score)  # frozen past the end
        rows = np.arange(B)
        path = np.zeros((B, W), dtype=np.int64)
        current = (score + self.end).argmax(1)  # each sentence's last label
        for t in range(W - 1, -1, -1):
            if t + 1 < W:  # step back where the sentence goes on past t
                current = np.where(t + 1 < lengths, back[rows, t + 1, current], current)
            path[:, t] = np.where(t < lengths, current, 0)
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
            alpha, beta = np.empty_like(E), np.empty_like(E)
            a = np.exp(self.start - self.start.max()) * E[:, 0]
            alpha[:, 0] = a / a.sum(1, keepdims=True)
            for t in range(1, W):
                a = _times(alpha[:, t - 1], M) * E[:, t]
                alpha[:, t] = a / a.sum(1, keepdims=True)
            end = np.exp(self.end - self.end.max())
            end = end / end.sum()
            beta[:, W - 1] = end
            for t in range(W - 2, -1, -1):
                b = _times(E[:, t + 1] * beta[:, t + 1], M.T)
                b = b / b.sum(1, keepdims=True)
                beta[:, t] = np.where((t >= lengths - 1)[:, None], end, b)
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


WordTags = dict[str, HeadTags]  # head name -> its tags, in the model's head order


@dataclass(frozen=True)
class TagDecoder:
    """Each head's decoder, in head order: a CRF, or the argmax of a softmax (crf None)."""

    heads: list[tuple[str, list[str], CRFDecoder | None]]

    def decode(self, logits: dict[str, np.ndarray], word_starts: np.ndarray) -> WordTags:
        """Per-piece logits {head: (T, n)} of one sentence -> labels of each word's first piece."""
        return self.decode_batch({k: v[None] for k, v in logits.items()}, [word_starts])[0]

    def decode_batch(
        self, logits: dict[str, np.ndarray], word_starts: list[np.ndarray]
    ) -> list[WordTags]:
        """A padded batch's logits {head: (B, T, n)} and each sentence's word starts -> the
        labels of each sentence's words; a CRF runs once over the whole batch."""
        B = len(word_starts)
        lengths = np.array([len(w) for w in word_starts])
        W = int(lengths.max()) if B else 0
        # each sentence's first-piece rows, padded with its piece 0 (ignored past its length)
        index = np.zeros((B, W), dtype=np.int64)
        for i, starts in enumerate(word_starts):
            index[i, : len(starts)] = starts
        rows = np.arange(B)[:, None]
        out: list[WordTags] = [{} for _ in range(B)]
        for name, labels, crf in self.heads:
            scores = logits[f"{name}_logits"][rows, index].astype(np.float64)  # (B, W, n)
            if crf is None:
                probs = softmax(scores)
                ids = probs.argmax(-1)
            else:
                ids = crf.viterbi_batch(scores, lengths)
                probs = crf.marginals_batch(scores, lengths)
            best = np.take_along_axis(probs, ids[..., None], -1)[..., 0]
            for i, n in enumerate(lengths.tolist()):
                names = [labels[k] for k in ids[i, :n].tolist()]
                out[i][name] = HeadTags(names, best[i, :n].tolist())
        return out


def tag_decoder(heads: list[tuple[str, list[str], dict[str, np.ndarray] | None]]) -> TagDecoder:
    """The one decoder of a model's tags ((name, labels, CRF weights or None) per head, from its
    model.json): the service's batches and the evaluation (training/evaluate.py) both use it,
    so the evaluation measures what is served."""
    return TagDecoder(
        [
            (name, labels, None if crf is None else CRFDecoder.build(labels, **crf))
            for name, labels, crf in heads
        ]
    )
