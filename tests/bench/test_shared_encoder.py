"""The shared-encoder probe: its pooling is length-exact and its ridge fit is least squares."""

from __future__ import annotations

import numpy as np
import pytest

pytestmark = pytest.mark.slow  # torch
torch = pytest.importorskip("torch")

from bench.probes.shared_encoder import fit_ridge, pooled_states  # noqa: E402
from training.export import example_batch  # noqa: E402
from training.model import BiGRUModel, ModelConfig  # noqa: E402


def test_ridge_recovers_a_linear_map_with_bias() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(500, 6))
    w, b = rng.normal(size=(6, 3)), rng.normal(size=3)
    fitted = fit_ridge(x, x @ w + b, alpha=1e-9)
    np.testing.assert_allclose(fitted[:-1], w, atol=1e-6)
    np.testing.assert_allclose(fitted[-1], b, atol=1e-6)
    shrunk = fit_ridge(x, x @ w + b, alpha=1e4)  # a strong penalty shrinks the weights only
    assert np.abs(shrunk[:-1]).sum() < np.abs(w).sum() / 2


def test_pooled_tagger_states_do_not_depend_on_the_batch() -> None:
    from app.model.featurize import Features

    torch.manual_seed(0)
    cfg = ModelConfig(vocab_size=500, emb_dim=12, case_dim=4, hidden=8, layers=2)
    model = BiGRUModel(cfg, torch.randn(500, 12))
    lengths = [5, 1, 9, 3]
    batch = example_batch(lengths, vocab=500)
    feats = [
        Features(batch["input_ids"][i, :n], batch["case_ids"][i, :n], np.arange(n))
        for i, n in enumerate(lengths)
    ]
    together = pooled_states(model, feats)
    assert together.shape == (4, 4 * cfg.hidden)
    for i, f in enumerate(feats):
        np.testing.assert_allclose(pooled_states(model, [f])[0], together[i], atol=1e-5)
