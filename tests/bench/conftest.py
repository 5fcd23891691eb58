"""What the bench tests share: a tiny EWT data folder."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture
def ewt_data(tmp_path: Path) -> Path:
    """Tiny EWT dev and train (UD + UNER) files and a sentences.txt, in tmp_path."""
    data = tmp_path
    (data / "ud-ewt").mkdir(parents=True)
    (data / "uner-ewt").mkdir()
    (data / "sentences").mkdir()
    train = [("t1", "Alice moved to Paris .", "PROPN VERB ADP PROPN PUNCT", "B-PER O O B-LOC O")]
    train += [("t2", "Train line", "NOUN NOUN", "O O")]
    ud, uner = [], []
    for sid, words, upos, ner in train:
        rows = list(zip(words.split(), upos.split(), ner.split(), strict=True))
        ud.append(f"# sent_id = {sid}\n# text = {words}\n")
        uner.append(f"# sent_id = {sid}\n")
        for i, (w, u, t) in enumerate(rows, 1):
            ud[-1] += f"{i}\t{w}\t_\t{u}\n"
            uner[-1] += f"{i}\t{w}\t{t}\t-\t-\n"
    (data / "ud-ewt" / "en_ewt-ud-train.conllu").write_text("\n".join(ud) + "\n")
    (data / "uner-ewt" / "en_ewt-ud-train.iob2").write_text("\n".join(uner) + "\n")
    dev = "# sent_id = d1\n# text = Hello  World.\n1\tHello\t_\tINTJ\n2\tWorld.\t_\tNOUN\n"
    (data / "ud-ewt" / "en_ewt-ud-dev.conllu").write_text(dev + "\n")
    lines = ["hello world.", "A", "B", "train LINE", "C", "D", "E"]
    (data / "sentences" / "sentences.txt").write_text("\n".join(lines) + "\n")
    return data
