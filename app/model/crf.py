"""A linear-chain CRF over IOB2 labels: the best label path (Viterbi) and each word's label
marginals (forward-backward) of a padded batch.

The loops over word positions run in ONNX Runtime (app/model/graphs/, made by
training/crf_graphs.py), which releases the GIL while it runs them: done in numpy, a position
was a dozen small calls, each holding the GIL, so a worker decoding a batch held up the other
workers and the event loop. The work before and after the loops is a few numpy calls per batch.
Each position's sums run along a row, so a sentence gets the same bits alone and in any batch.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnxruntime as ort

_FORBIDDEN = -1e4  # added to impossible IOB2 moves; finite so logsumexp stays finite
_GRAPHS = Path(__file__).parent / "graphs"


@functools.cache
def _sessions() -> tuple[ort.InferenceSession, ort.InferenceSession]:
    """The forward and backward loops' sessions, one pair per process for every CRF (the label
    set comes in as inputs); several threads may run them at once."""
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.inter_op_num_threads = 1
    opts.log_severity_level = 3
    cpu = ["CPUExecutionProvider"]
    return (
        ort.InferenceSession(str(_GRAPHS / "crf_forward.onnx"), opts, providers=cpu),
        ort.InferenceSession(str(_GRAPHS / "crf_backward.onnx"), opts, providers=cpu),
    )


def _loop(
    which: int, feeds: dict[str, np.ndarray], shapes: list[tuple[int, ...]]
) -> list[np.ndarray]:
    """The forward (0) or backward (1) loop's outputs; a sentence of one word has no step (ORT's
    Scan refuses zero steps), so they are empty, of `shapes`."""
    if shapes[0][1] == 0:
        return [np.zeros(s, dtype=np.int64 if k == 0 else np.float64) for k, s in enumerate(shapes)]
    return _sessions()[which].run(None, feeds)


def _padded(x: np.ndarray, square: bool = False) -> np.ndarray:
    """`x` with zeros after its last axis's labels, to a multiple of 8 (a `square` matrix of
    moves: after its rows too), as the graphs' sums read them (training/crf_graphs.py)."""
    k = -(-x.shape[-1] // 8) * 8
    out = np.zeros((k, k) if square else (*x.shape[:-1], k))
    out[tuple(slice(0, d) for d in x.shape)] = x
    return out


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
        return self.decode_batch(emissions[None], np.array([W]))[0][0, :W].tolist()

    def marginals(self, emissions: np.ndarray) -> np.ndarray:
        """P(label at word t | sentence), (W, n)."""
        W = emissions.shape[0]
        return self.decode_batch(emissions[None], np.array([W]))[1][0, :W]

    def decode_batch(
        self, emissions: np.ndarray, lengths: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """A padded batch's emissions (B, W, n), sentence b's words [:lengths[b]] (at least
        one) -> the best paths (B, W) (0 past each length) and the marginals (B, W, n) (rows
        past a length undefined). Marginals are computed in probability space, each step
        rescaled to sum 1; a sentence whose scores are so far apart that a step underflows is
        redone in log space."""
        B, W, n = emissions.shape
        if W == 0:
            return np.zeros((B, 0), dtype=np.int64), np.zeros((B, 0, n))
        emissions = np.ascontiguousarray(emissions, dtype=np.float64)
        rows, past = np.arange(B), np.arange(W)[None, :] >= lengths[:, None]  # (B,), (B, W)
        with np.errstate(all="ignore"):  # an underflowed step shows as a non-finite result
            E = _padded(np.exp(emissions - emissions.max(2, keepdims=True)))  # row max 1
            # barred moves -> 0
            M = _padded(np.exp(self.transitions - self.transitions.max()), square=True)
            a = E[:, 0] * _padded(np.exp(self.start - self.start.max()))
            alpha0 = a / a.sum(1, keepdims=True)
            score0 = self.start + emissions[:, 0]
            feeds = {"score0": score0, "alpha0": alpha0, "emissions": emissions[:, 1:],
                     "E": E[:, 1:], "transitions": self.transitions, "MT": M.T.copy()}  # fmt: skip
            back, score, alpha = _loop(0, feeds, [(B, W - 1, n)] * 2 + [(B, W - 1, E.shape[2])])
            scores = np.concatenate([score0[:, None], score], 1)  # (B, W, n)
            current = (scores[rows, np.maximum(lengths - 1, 0)] + self.end).argmax(1)
            back[past[:, 1:]] = np.arange(n)  # past a sentence's end a label stays itself
            end = np.exp(self.end - self.end.max())
            end = _padded(end / end.sum())
            feeds = {"current": current, "beta0": np.broadcast_to(end, (B, len(end))).copy(),
                     "back": back, "E": E[:, 1:], "reset": past[:, 1:, None], "M": M,
                     "ends": end}  # fmt: skip
            labels, beta = _loop(1, feeds, [(B, W - 1), (B, W - 1, len(end))])
            paths = np.concatenate([labels, current[:, None]], 1)
            paths[past] = 0
            m = (
                np.concatenate([alpha0[:, None], alpha], 1)[..., :n]
                * np.concatenate([beta, np.broadcast_to(end, (B, 1, len(end)))], 1)[..., :n]
            )
            m = m / m.sum(2, keepdims=True)
        for i in range(B):
            k = int(lengths[i])
            if not np.isfinite(m[i, :k]).all():
                m[i, :k] = self._log_marginals(emissions[i, :k])
        return paths, m

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
