"""STS-Benchmark: Spearman x100 of cosine similarity against the gold scores."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from training.data import read_stsb

Encoder = Callable[[list[str]], np.ndarray]  # sentences -> (N, D) vectors


def _ranks(x: np.ndarray) -> np.ndarray:
    """Ranks with ties averaged."""
    order = np.argsort(x, kind="mergesort")
    _, first, counts = np.unique(x[order], return_index=True, return_counts=True)
    ranks = np.empty(len(x))
    ranks[order] = np.repeat(first + (counts - 1) / 2, counts)
    return ranks


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.corrcoef(_ranks(np.asarray(a)), _ranks(np.asarray(b)))[0, 1])


def stsb_spearman(encode: Encoder, data_dir: Path, split: str = "dev") -> float:
    rows = read_stsb(data_dir / "stsb" / f"sts-{split}.csv")
    u = encode([r[0] for r in rows])
    v = encode([r[1] for r in rows])
    u = u / np.linalg.norm(u, axis=1, keepdims=True).clip(1e-12)
    v = v / np.linalg.norm(v, axis=1, keepdims=True).clip(1e-12)
    return 100 * spearman((u * v).sum(1), np.array([r[2] for r in rows]))
