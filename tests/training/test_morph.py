"""`bigru morph` on a small tagger and treebank: the layer trains, the export answers what it
learned (heads read at first and last pieces), `recover` reads it back, and a second run
replaces the layer rather than stacking one."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from app.model.spec import ModelSpec
from training import teacher
from training.card import write_card
from training.checkpoint import save_checkpoint
from training.examples import EWT_LABELS
from training.export import export
from training.model import BiGRUModel, ModelConfig
from training.morph import MorphConfig, train_morph
from training.recover import recover

pytestmark = pytest.mark.slow  # training

# word, UPOS, XPOS, UFeats, lemma: inflections the last piece shows (walked, cats, running)
SENTENCES = [
    [
        ("The", "DET", "DT", "Definite=Def", "the"),
        ("cats", "NOUN", "NNS", "Number=Plur", "cat"),
        ("walked", "VERB", "VBD", "Tense=Past", "walk"),
        (".", "PUNCT", ".", "_", "."),
    ],
    [
        ("A", "DET", "DT", "Definite=Ind", "a"),
        ("cat", "NOUN", "NN", "Number=Sing", "cat"),
        ("is", "AUX", "VBZ", "Number=Sing", "be"),
        ("running", "VERB", "VBG", "VerbForm=Ger", "run"),
        (".", "PUNCT", ".", "_", "."),
    ],
    [
        ("Dogs", "NOUN", "NNS", "Number=Plur", "dog"),
        ("walk", "VERB", "VBP", "Tense=Pres", "walk"),
        ("home", "ADV", "RB", "_", "home"),
    ],
]


def _write_treebank(data: Path) -> None:
    (data / "ud-ewt").mkdir(parents=True)
    for split in ("train", "dev"):
        lines = []
        for k, words in enumerate(SENTENCES * 4):
            lines += [f"# sent_id = s{k}", f"# text = {' '.join(w[0] for w in words)}"]
            lines += [
                f"{i}\t{w}\t{lemma}\t{u}\t{x}\t{f}\t_\t_\t_\t_"
                for i, (w, u, x, f, lemma) in enumerate(words, 1)
            ]
            lines.append("")
        (data / "ud-ewt" / f"en_ewt-ud-{split}.conllu").write_text("\n".join(lines))


def _tagger(out: Path) -> None:
    """A small tagger (random weights, no sentence encoder) exported with its card."""
    torch.manual_seed(0)
    cfg = ModelConfig(
        tag_input=8, case_dim=4, lex_rows=10, lex_dim=4, hidden=6, layers=1, sent_dim=0
    )
    model = BiGRUModel(cfg, teacher.input_table()).eval()
    ckpt = {"config": cfg.to_dict(), "meta": {}, "labels": EWT_LABELS}
    facts = export(model, ckpt, out)
    write_card(out, "tiny", "0.0.1", ckpt, {**facts, "parameters": 0}, None, None)


def test_the_layer_trains_exports_and_is_replaced_by_the_next(tmp_path: Path) -> None:
    data, tagger = tmp_path / "data", tmp_path / "tagger"
    _write_treebank(data)
    _tagger(tagger)
    cfg = MorphConfig(hidden=8, input=6, epochs=30, batch=4, lr=0.02, min_count=1)
    model, run = train_morph(tagger, data, cfg)
    best = max(run["facts"]["history"], key=lambda h: h["xpos"] + h["feats"] + h["lemma"])
    assert best["xpos"] > 60  # it learned the 12 words (the most frequent tag: 2 in 12)

    first = tmp_path / "morph"
    ckpt_path = tmp_path / "run" / "tagger.pt"
    ckpt_path.parent.mkdir()
    meta = {"morph": run["facts"]}
    save_checkpoint(model, ckpt_path, meta, {**EWT_LABELS, **run["labels"]})
    ckpt = torch.load(ckpt_path, weights_only=False)
    facts = export(model, ckpt, first)
    assert facts["parity_max_abs_diff"] <= 1e-4
    write_card(first, "tiny", "0.0.2", ckpt, {**facts, "parameters": 0}, None, None)
    heads = json.loads((first / "model.json").read_text())["heads"]
    assert [h.get("pieces", "first") for h in heads] == ["first"] * 2 + ["first+last"] * 3
    assert [h.name for h in ModelSpec.load(first).heads][2:] == ["xpos", "feats", "lemma"]

    recovered, _ = recover(first)  # the projection and the layer read back from the graph
    want, got = model.state_dict(), recovered.state_dict()
    assert want.keys() == got.keys() and "morph_in.weight" in want
    folded = {"tag_in.weight"}  # folded into a table by the export: back by least squares
    assert [k for k in want.keys() - folded - {"table"} if not torch.equal(want[k], got[k])] == []
    torch.testing.assert_close(got["tag_in.weight"], want["tag_in.weight"], rtol=0, atol=1e-5)

    again, _ = train_morph(first, data, MorphConfig(hidden=5, input=0, epochs=1, min_count=1))
    names = [h["name"] for h in again.cfg.head_list()]
    assert names == ["upos", "ner", "xpos", "feats", "lemma"]  # replaced, not stacked
    assert again.cfg.morph_hidden == 5 and again.morph_in is None
