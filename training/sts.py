"""STS-Benchmark: Spearman x100 of cosine similarity against the gold scores, and how near a
model's cosines are to the teacher's (the scale people carry over from it)."""

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
    cos = _cosines(encode([r[0] for r in rows]), encode([r[1] for r in rows]))
    return 100 * spearman(cos, np.array([r[2] for r in rows]))


def _cosines(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    u = u / np.linalg.norm(u, axis=1, keepdims=True).clip(1e-12)
    v = v / np.linalg.norm(v, axis=1, keepdims=True).clip(1e-12)
    return (u * v).sum(1)


def scale_figures(
    encode: Encoder,
    teacher: Encoder,
    data_dir: Path,
    split: str = "dev",
    sizes: tuple[int, ...] = (64, 128, 256),
) -> dict[str, float]:
    """Per size (each prefix of the vector, and the whole): Spearman, the mean gap between our
    cosine and the teacher's over the split's pairs, and the median cosine of the pairs people
    rated 0-1 (unrelated); the teacher's Spearman and median too."""
    rows = read_stsb(data_dir / "stsb" / f"sts-{split}.csv")
    gold = np.array([r[2] for r in rows])
    left, right = [r[0] for r in rows], [r[1] for r in rows]
    t = teacher(left + right)
    teacher_cos = _cosines(t[: len(rows)], t[len(rows) :])
    u, v = encode(left), encode(right)
    out = {
        "teacher_stsb": 100 * spearman(teacher_cos, gold),
        "teacher_low_median": float(np.median(teacher_cos[gold <= 1])),
    }
    for d in (*sizes, u.shape[1]):
        cos = _cosines(u[:, :d], v[:, :d])
        out[f"stsb_{d}"] = 100 * spearman(cos, gold)
        out[f"gap_{d}"] = float(np.abs(cos - teacher_cos).mean())
        out[f"low_median_{d}"] = float(np.median(cos[gold <= 1]))
    return out
