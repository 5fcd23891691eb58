"""The model-alone measurement: length-sorted batches and the rates counted over them."""

from __future__ import annotations

import numpy as np

from app.model.featurize import Features
from bench.runtimes import Rate, length_sorted_batches, measure


def _features(n: int) -> Features:
    ids = np.arange(1, n + 1, dtype=np.int64)
    return Features(ids, np.ones(n, dtype=np.int64), np.arange(n, dtype=np.int64))


def test_length_sorted_batches_and_rates() -> None:
    batches = length_sorted_batches([_features(n) for n in (5, 1, 3, 2, 4)], 2)
    assert [b["lengths"].tolist() for b in batches] == [[1, 2], [3, 4], [5]]
    assert [b["input_ids"].shape for b in batches] == [(2, 2), (2, 4), (1, 5)]
    rate = measure(lambda feeds: None, batches, seconds=0.0, warmup=0)  # at least one run
    assert rate.runs == 1 and rate.sentences in (1, 2)
    r = Rate()
    r.add(batches[1], 0.5)
    assert r.as_dict()["pieces_per_s"] == 14 and r.padded_pieces == 8
