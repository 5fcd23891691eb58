"""The shared-encoder design, measured: a ridge head from the frozen tagger's pooled states to
the teacher's vectors, scored on STS-B dev.

    python -m bench.probes.shared_encoder --data DATA --tagger TAGGER.pt [--sentences 50000]
"""

import argparse
import json
from pathlib import Path

import numpy as np
import torch

from app.model.featurize import Features, WordPiece, length_batches
from bench.report import log
from training import teacher
from training.checkpoint import load_checkpoint
from training.distill import DistillConfig, build_corpus, cached_teacher_vectors, student_features
from training.model import BiGRUModel, masked_mean_max
from training.sts import stsb_spearman


@torch.inference_mode()
def pooled_states(model: BiGRUModel, feats: list[Features], batch: int = 128) -> np.ndarray:
    """Masked mean and max over time of the tagger's piece states, (N, 4H)."""
    model.eval()
    out = np.zeros((len(feats), 4 * model.cfg.hidden), dtype=np.float32)
    for idx, feeds in length_batches(feats, batch):
        b = {k: torch.from_numpy(v) for k, v in feeds.items()}
        h = model.encode(b["input_ids"], b["case_ids"], b["lengths"])  # (B, T, 2H), 0 at pads
        out[idx] = masked_mean_max(h, b["lengths"]).numpy()
    return out


def fit_ridge(x: np.ndarray, y: np.ndarray, alpha: float) -> np.ndarray:
    """W (D+1, K) minimising |[x 1] W - y|^2 + alpha |W|^2 (bias not penalised)."""
    x1 = np.hstack([x, np.ones((len(x), 1), dtype=x.dtype)]).astype(np.float64)
    reg = alpha * np.eye(x1.shape[1])
    reg[-1, -1] = 0.0
    return np.linalg.solve(x1.T @ x1 + reg, x1.T @ y.astype(np.float64))


def probe(data_dir: Path, tagger: Path, sentences: int, cache: Path, threads: int = 2) -> dict:
    """STS-B dev of a ridge head on the frozen tagger's pooled states, for a few alphas."""
    torch.set_num_threads(threads)
    model, _ = load_checkpoint(tagger)
    wp = WordPiece.from_file(teacher.vocab_file())
    corpus = build_corpus(data_dir, DistillConfig())[:sentences]
    targets = cached_teacher_vectors(corpus, cache)
    x = pooled_states(model, student_features(corpus, wp))
    log("shared", f"the tagger's states of {len(corpus)} sentences")
    result: dict[str, float] = {"sentences": float(len(corpus))}
    for alpha in (1.0, 10.0, 100.0):
        w = fit_ridge(x, targets, alpha)

        def encode(texts: list[str], w: np.ndarray = w) -> np.ndarray:
            feats = pooled_states(model, student_features(texts, wp))
            return np.hstack([feats, np.ones((len(feats), 1), np.float32)]) @ w

        result[f"stsb_dev_alpha_{alpha:g}"] = score = stsb_spearman(encode, data_dir)
        log("shared", f"alpha {alpha:g}: STS-B dev {score:.2f}")
    return result


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", type=Path, required=True)
    p.add_argument("--tagger", type=Path, required=True, help="tagger checkpoint")
    p.add_argument("--sentences", type=int, default=50_000, help="corpus sentences to fit on")
    p.add_argument("--cache", type=Path, default=Path("cache"), help="teacher vector cache")
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args(argv)
    result = probe(args.data, args.tagger, args.sentences, args.cache, args.threads)
    log("shared", json.dumps(result))


if __name__ == "__main__":
    main()
