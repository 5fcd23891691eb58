"""What a run trains on: encoded train and dev sentences, the heads they train, data facts.

Two sources: UD English-EWT joined with UNER (`--data`), or a user's labelled files.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from app.model.featurize import WordPiece
from training.conll import Column, Table, heads_of, read_table
from training.data import Sentence, load_tagging
from training.examples import EWT_LABELS, Example, encode, encode_ewt
from training.model import ModelConfig


@dataclass
class Corpus:
    """Encoded train and dev sentences and the heads they train."""

    train: list[Example]
    dev: list[Example]
    heads: list[dict]  # {"name", "size", "decoder"}, in output order
    labels: dict[str, list[str]]  # head name -> its labels, by id
    facts: dict = field(default_factory=dict)  # data sizes and provenance, for the card
    # train's and dev's sentences with their dependency trees, when the files give them
    trees: tuple[list[Sentence], list[Sentence]] | None = None

    @property
    def decoders(self) -> dict[str, str]:
        return {h["name"]: h["decoder"] for h in self.heads}


def ewt_corpus(data_dir: Path, wp: WordPiece, limit: int | None) -> Corpus:
    """UD English-EWT UPOS joined with UNER NER on sent_id."""
    train_s, train_rep = load_tagging(data_dir, "train")
    dev_s, dev_rep = load_tagging(data_dir, "dev")
    train_s = train_s[:limit]
    print(
        f"train {train_rep.joined} sentences (skipped {len(train_rep.skipped)}), "
        f"dev {dev_rep.joined} (skipped {len(dev_rep.skipped)})",
        flush=True,
    )
    heads = ModelConfig().head_list()
    facts = {
        "skipped": {"train": train_rep.skipped, "dev": dev_rep.skipped},
        "sentences": {"train": len(train_s), "dev": len(dev_s)},
        "tokens": {
            "train": sum(len(s.words) for s in train_s),
            "dev": sum(len(s.words) for s in dev_s),
        },
    }
    return Corpus(encode_ewt(train_s, wp), encode_ewt(dev_s, wp), heads, EWT_LABELS, facts)


def file_corpus(
    train_path: Path, dev_path: Path, columns: list[Column] | None, wp: WordPiece,
    limit: int | None,
) -> Corpus:  # fmt: skip
    """A user's train and dev files; every check runs before a model is built."""
    train_t, columns = read_table(train_path, columns)
    dev_t, _ = read_table(dev_path, columns)
    found = heads_of([train_t, dev_t])
    heads = [{"name": h.name, "size": len(h.labels), "decoder": h.decoder} for h in found]
    if sum(h["decoder"] == "crf" for h in heads) > 1:
        raise ValueError("at most one span (IOB) label column per model")
    labels = {h.name: h.labels for h in found}
    train_words = train_t.words[:limit]
    train_x = encode(train_words, {k: v[:limit] for k, v in train_t.labels.items()}, labels, wp)
    facts = {
        "files": {"train": str(train_path), "dev": str(dev_path)},
        "sentences": {"train": len(train_x), "dev": len(dev_t.words)},
        "tokens": {"train": sum(map(len, train_words)), "dev": sum(map(len, dev_t.words))},
        "columns": {c.name: c.index for c in columns},
    }
    for h in heads:
        print(f"head {h['name']}: {h['decoder']}, {h['size']} labels", flush=True)
    print(f"train {len(train_x)} sentences, dev {len(dev_t.words)}", flush=True)
    dev_x = encode(dev_t.words, dev_t.labels, labels, wp)
    return Corpus(train_x, dev_x, heads, labels, facts, _trees(train_t, dev_t, limit))


def _trees(train: Table, dev: Table, limit: int | None):
    """Train's and dev's words with their trees, if both files give them."""
    if train.trees is None or dev.trees is None:
        return None
    return tuple(
        [Sentence(f"{table.path.name}-{k}", " ".join(words), words, heads=heads, deprels=rels)
         for k, (words, (heads, rels)) in enumerate(zip(table.words, table.trees, strict=True))]
        [:n]
        for table, n in ((train, limit), (dev, None))
    )  # fmt: skip
