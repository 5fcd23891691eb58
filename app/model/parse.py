"""The parsing layer's per-piece features -> each word's head and relation.

The graph answers, per piece, what is linear in a word's pieces (training.model.ParseLayer): the
dependent's arc features times U, the head's arc features, their bias, and the dependent's and
the head's relation features. A word's features are its first and last pieces' summed. Here:
arc scores over the sentence's words and the root, one well-formed tree (app.model.tree), then
each word's relation under the head it got. Every product is made per sentence, with the shapes
of that sentence alone, so a sentence is parsed the same alone and in any batch.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from app.model.tree import tree


@dataclass(frozen=True)
class Parse:
    """One sentence's parse: per word, its head (the word's index in the sentence; the root
    points at itself), its relation's label id, and the probability of both."""

    heads: np.ndarray  # (W,) int64
    relations: np.ndarray  # (W,) int64
    scores: np.ndarray  # (W,) float64


class TreeDecoder:
    def __init__(self, weights: dict[str, Any]) -> None:
        self.arc, self.rel = int(weights["arc"]), int(weights["rel"])
        self.root = np.asarray(weights["root"], dtype=np.float32)  # (arc,)
        self.root_bias = float(np.asarray(weights["root_bias"]))
        self.rel_root = np.asarray(weights["rel_root"], dtype=np.float32)  # (rel,)
        self.rel_weight = np.asarray(weights["rel_weight"], dtype=np.float32)  # (rel, R)
        self.rel_bias = np.asarray(weights["rel_bias"], dtype=np.float32)  # (R,)

    @property
    def width(self) -> int:
        """The graph's features per piece."""
        return 2 * self.arc + 1 + 2 * self.rel

    def parse(self, words: np.ndarray) -> Parse:
        """One sentence from its words' features (W, width)."""
        a, r = self.arc, self.rel
        dep, head, bias = words[:, :a], words[:, a : 2 * a], words[:, 2 * a]
        rel_dep, rel_head = words[:, 2 * a + 1 : 2 * a + 1 + r], words[:, 2 * a + 1 + r :]
        n = len(words)
        arcs = np.empty((n, n + 1), dtype=np.float64)
        arcs[:, 0] = dep @ self.root + self.root_bias
        arcs[:, 1:] = dep @ head.T + bias[None, :]
        arcs = _log_softmax(arcs)
        scores = np.zeros((n + 1, n + 1))
        scores[1:] = arcs
        heads = tree(scores)[1:]  # 0: the root, else the head's 1-based place
        under = np.where((heads == 0)[:, None], self.rel_root[None, :], rel_head[heads - 1])
        rel_probs = _softmax(
            np.maximum(rel_dep + under, 0) @ self.rel_weight + self.rel_bias
        ).astype(np.float64)
        relations = rel_probs.argmax(1)
        rows = np.arange(n)
        both = np.exp(arcs[rows, heads]) * rel_probs[rows, relations]
        own = np.where(heads == 0, rows, heads - 1)
        return Parse(own.astype(np.int64), relations.astype(np.int64), both)


def _log_softmax(x: np.ndarray) -> np.ndarray:
    z = x - x.max(axis=1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=1, keepdims=True))


def _softmax(x: np.ndarray) -> np.ndarray:
    z = np.exp(x - x.max(axis=1, keepdims=True))
    return z / z.sum(axis=1, keepdims=True)
