"""What the HTTP load sends: EWT dev sentences cycled (repeated text, so the service's caches
are warm), or corpus sentences that EWT dev and train do not hold, each sent at most once in a
run (novel text, as a service meets it); and how many words /tag makes of them."""

from __future__ import annotations

from pathlib import Path

from app.model.text import tokenize
from training.data import read_conllu

SENTENCES = Path("sentences") / "sentences.txt"
EWT = [Path("ud-ewt") / f"en_ewt-ud-{split}.conllu" for split in ("dev", "train")]


def _key(text: str) -> str:
    return " ".join(text.split()).lower()


def novel_texts(data_dir: Path, n: int) -> list[str]:
    """`n` lines of sentences.txt (deduplicated at the source), evenly spaced over the file so
    that every source in it is sampled, that are no EWT dev or train sentence (compared
    without case and runs of whitespace)."""
    ewt = {_key(s.text) for path in EWT for s in read_conllu(data_dir / path)}
    lines = (data_dir / SENTENCES).read_text(encoding="utf-8").splitlines()
    pool = [t for line in lines if (t := line.strip()) and _key(t) not in ewt]
    step = max(len(pool) // n, 1)
    return pool[::step][:n]


def words_per_text(texts: list[str]) -> float:
    """Mean tokens per text by the service's own tokenizer: the words /tag answers with."""
    return sum(len(tokenize(t)) for t in texts) / max(len(texts), 1)
