"""The model alone, ORT vs PyTorch eager, on the same padded numpy batches (features built
outside the timed region; PyTorch wraps them without a copy), in a seeded random order until
the time budget is spent, counting real pieces, not pads."""

import random
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from app.model.featurize import Features, length_batches

Feeds = dict[str, np.ndarray]
Run = Callable[[Feeds], object]


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
        rates = {"sentences_per_s": self.sentences * per_s, "pieces_per_s": self.pieces * per_s}
        return asdict(self) | rates


def measure(run: Run, batches: list[Feeds], seconds: float, warmup: int = 2, seed: int = 0) -> Rate:
    """Time `run` over `batches` in a seeded random order, cycling, for about `seconds`."""
    order = random.Random(seed).sample(range(len(batches)), len(batches))
    for i in order[:warmup]:  # first-run allocations and thread-pool start-up are not counted
        run(batches[i])
    rate = Rate()
    while rate.seconds < seconds or rate.runs == 0:
        feeds = batches[order[rate.runs % len(order)]]
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
        ids, lengths = torch.from_numpy(feeds["input_ids"]), torch.from_numpy(feeds["lengths"])
        with torch.inference_mode():
            if task == "tag":
                return model.tag(ids, torch.from_numpy(feeds["case_ids"]), lengths)
            return model.sentence(ids, lengths)

    return run
