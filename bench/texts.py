"""What the benchmark sends: EWT dev sentences (cycled, so the service's caches are warm) with
their features, or corpus sentences that EWT dev and train do not hold, each sent at most once
(novel text, as a service meets it); and how many words /tag makes of them."""

from dataclasses import dataclass
from pathlib import Path

from app.model.featurize import Features, WordPiece, featurize
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
