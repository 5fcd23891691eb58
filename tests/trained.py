"""A user's own model, trained in a test: a drug-and-dose tagger (`pos` and `ner` heads, no
sentence encoder) on a made-up fixture, in a few seconds on one thread."""

from __future__ import annotations

import random
from pathlib import Path

from training.cli import main

TEXT = "The patient got aspirin at 10 mg daily."


def _sentence(rng: random.Random) -> list[tuple[str, str, str]]:
    drug = rng.choice(["aspirin", "ibuprofen", "metformin", "insulin", "warfarin"])
    amount, unit = rng.choice([("10", "mg"), ("5", "ml"), ("200", "mg"), ("two", "tablets")])
    head = [("Take", "VERB", "O")]
    if rng.random() < 0.5:
        head = [("The", "DET", "O"), ("patient", "NOUN", "O"), ("got", "VERB", "O")]
    return [
        *head,
        (drug, "NOUN", "B-DRUG"),
        ("at", "ADP", "O"),
        (amount, "NUM", "B-DOSE"),
        (unit, "NOUN", "I-DOSE"),
        ("daily", "ADV", "O"),
        (".", "PUNCT", "O"),
    ]


def write_fixture(path: Path, n: int, seed: int) -> Path:
    """`n` sentences in CoNLL-style columns: word, POS, drug/dose spans."""
    rng = random.Random(seed)
    blocks = ["\n".join("\t".join(row) for row in _sentence(rng)) for _ in range(n)]
    path.write_text("# word, POS, drug/dose spans\n" + "\n\n".join(blocks) + "\n")
    return path


def train_drug_model(root: Path) -> Path:
    """Trains into root/run and exports root/model (tagger only); gives root."""
    train, dev = (
        write_fixture(root / "train.conll", 40, 0),
        write_fixture(root / "dev.conll", 10, 1),
    )
    main(
        ["train", "--train", str(train), "--dev", str(dev), "--task", "pos:2", "--task", "ner:3",
         "--out", str(root / "run"), "--epochs", "12", "--hidden", "16", "--layers", "1",
         "--lr", "0.02", "--threads", "1"]
    )  # fmt: skip
    main(["export", "--tagger", str(root / "run" / "tagger.pt"), "--out", str(root / "model")])
    return root
