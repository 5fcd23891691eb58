"""The model alone, ORT vs PyTorch eager: EWT dev sentences in length-sorted batches.

Features are built once, outside the timed region (both engines get the same padded numpy
batches; PyTorch wraps them with `torch.from_numpy`, no copy). A measurement runs batches in a
seeded random order, cycling, until its time budget is spent, and counts real pieces (not pads).
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from app.model.featurize import Features, WordPiece, featurize, length_batches
from app.model.text import tokenize
from training.data import read_conllu

Feeds = dict[str, np.ndarray]
Run = Callable[[Feeds], object]

EWT_DEV = Path("ud-ewt") / "en_ewt-ud-dev.conllu"


@dataclass(frozen=True)
class Corpus:
    """EWT dev sentences that tokenize to at least one word, and their features."""

    texts: list[str]
    features: list[Features]

    @property
    def pieces(self) -> int:
        return sum(f.length for f in self.features)


def load_corpus(data_dir: Path, vocab_file: Path) -> Corpus:
    wordpiece = WordPiece.from_file(vocab_file)
    texts, features = [], []
    for sentence in read_conllu(data_dir / EWT_DEV):
        words = [t.text for t in tokenize(sentence.text)]
        if words:
            texts.append(sentence.text)
            features.append(featurize(words, wordpiece))
    return Corpus(texts, features)


def length_sorted_batches(features: list[Features], size: int) -> list[Feeds]:
    """Sorted by piece count, cut into batches of `size` (the last may be smaller), padded."""
    return [feeds for _, feeds in length_batches(features, size)]


@dataclass
class Rate:
    """Totals over timed runs; rates are real (unpadded) pieces and sentences per second."""

    runs: int = 0
    sentences: int = 0
    pieces: int = 0
    padded_pieces: int = 0
    seconds: float = 0.0

    def add(self, feeds: Feeds, seconds: float) -> None:
        B, T = feeds["input_ids"].shape
        self.runs += 1
        self.sentences += B
        self.pieces += int(feeds["lengths"].sum())
        self.padded_pieces += B * T
        self.seconds += seconds

    def as_dict(self) -> dict[str, Any]:
        per_s = 1 / self.seconds if self.seconds else 0.0
        return {
            **asdict(self),
            "sentences_per_s": self.sentences * per_s,
            "pieces_per_s": self.pieces * per_s,
        }


def measure(run: Run, batches: list[Feeds], seconds: float, warmup: int = 2, seed: int = 0) -> Rate:
    """Time `run` over `batches` in a seeded random order, cycling, for about `seconds`."""
    order = random.Random(seed).sample(range(len(batches)), len(batches))
    for i in order[:warmup]:  # first-run allocations and thread-pool start-up are not counted
        run(batches[i])
    rate = Rate()
    k = 0
    while rate.seconds < seconds or rate.runs == 0:
        feeds = batches[order[k % len(order)]]
        k += 1
        t0 = time.perf_counter()
        run(feeds)
        rate.add(feeds, time.perf_counter() - t0)
    return rate


def ort_runner(backend: Any, task: str) -> Run:
    """The service's `OnnxBackend.run` for the task's outputs (the other encoder is gated off)."""
    outputs = backend.spec.task_outputs[task]
    return lambda feeds: backend.run(feeds, outputs)


def torch_runner(model: Any, task: str) -> Run:
    """The checkpoint's `tag` or `sentence` forward (packed GRU) under inference mode."""
    import torch

    def run(feeds: Feeds) -> object:
        ids = torch.from_numpy(feeds["input_ids"])
        lengths = torch.from_numpy(feeds["lengths"])
        with torch.inference_mode():
            if task == "tag":
                return model.tag(ids, torch.from_numpy(feeds["case_ids"]), lengths)
            return model.sentence(ids, lengths)

    return run


def torch_parity(model: Any, backend: Any, feeds: Feeds) -> float:
    """Max |ORT - PyTorch| over all outputs and valid positions of one batch: the checkpoint
    and model.onnx must be the same model for the comparison to mean anything."""
    tasks = backend.spec.task_outputs
    outputs = tasks["tag"] + tasks["embed"]
    got = backend.run(feeds, outputs)
    ref = {}
    for task in ("tag", "embed"):
        out = torch_runner(model, task)(feeds)
        values = out if isinstance(out, tuple) else (out,)
        ref.update({k: v.numpy() for k, v in zip(tasks[task], values, strict=True)})
    worst = 0.0
    for i, n in enumerate(feeds["lengths"].tolist()):
        for name in outputs:
            keep = slice(None) if name == "embedding" else slice(0, n)  # (D,) or (T, C)
            diff = got[name][i][keep] - ref[name][i][keep]
            worst = max(worst, float(np.abs(diff).max()))
    return worst
