"""The texts the benchmark sends, and the model alone on them: EWT dev sentences with their
features, novel corpus sentences; ORT vs PyTorch eager on the same padded batches."""

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

EWT_DEV = Path("ud-ewt") / "en_ewt-ud-dev.conllu"
EWT = [EWT_DEV, Path("ud-ewt") / "en_ewt-ud-train.conllu"]
SENTENCES = Path("sentences") / "sentences.txt"


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
        if words := [t.text for t in tokenize(sentence.text)]:
            texts.append(sentence.text)
            features.append(featurize(words, wordpiece))
    return Corpus(texts, features)


def _key(text: str) -> str:
    return " ".join(text.split()).lower()


def novel_texts(data_dir: Path, n: int) -> list[str]:
    """`n` lines of sentences.txt, evenly spaced over the file so that every source in it is
    sampled, that are no EWT dev or train sentence (compared without case and whitespace runs)."""
    ewt = {_key(s.text) for path in EWT for s in read_conllu(data_dir / path)}
    lines = (data_dir / SENTENCES).read_text(encoding="utf-8").splitlines()
    pool = [t for line in lines if (t := line.strip()) and _key(t) not in ewt]
    return pool[:: max(len(pool) // n, 1)][:n]


def words_per_text(texts: list[str]) -> float:
    """Mean tokens per text by the service's own tokenizer: the words /tag answers with."""
    return sum(len(tokenize(t)) for t in texts) / max(len(texts), 1)


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
