"""Dev metrics: UPOS accuracy and conlleval-style entity micro F1 (exact span and type)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np

from app.model.backend import OnnxBackend
from app.model.decode import WordTags
from app.model.featurize import Features, WordPiece, featurize
from training.data import Sentence, load_tagging
from training.distill import student_features, teacher_vectors
from training.parse_errors import error_table
from training.scores import tagging_scores
from training.sts import scale_figures, stsb_spearman


class OnnxModel:
    """The exported model as the service runs it: its backend, featurizer and decoder."""

    def __init__(self, model_dir: Path, threads: int = 2):
        self.backend = OnnxBackend(model_dir, ["cpu"], threads)
        spec = self.backend.spec
        self.wp = WordPiece(spec.vocab)

    def _batches(self, feats: list[Features], size: int = 64) -> Iterator[list[int]]:
        """Indices of `feats` in batches of similar lengths."""
        order = sorted(range(len(feats)), key=lambda i: feats[i].length)
        for j in range(0, len(order), size):
            yield order[j : j + size]

    def tag(self, sentences: list[list[str]]) -> list[WordTags]:
        feats = [featurize(words, self.wp) for words in sentences]
        out: list[WordTags | None] = [None] * len(feats)
        for idx in self._batches(feats):
            for i, t in zip(idx, self.backend.tag([feats[i] for i in idx]), strict=True):
                out[i] = t
        return out  # type: ignore[return-value]

    def embed(self, texts: list[str]) -> np.ndarray:
        feats = student_features(texts, self.wp)
        out = np.zeros((len(feats), self.backend.spec.embedding_dim), dtype=np.float32)
        for idx in self._batches(feats):
            out[idx] = np.stack(self.backend.embed([feats[i] for i in idx]))
        return out


def _morph_scores(model: OnnxModel, sentences: list[Sentence], pred: list[WordTags]) -> dict:
    """XPOS, UFeats and lemma accuracy (%) on gold words, for a model with those heads; the
    lemma as the service makes it."""
    heads = {h.name: h for h in model.backend.spec.heads}
    if not {"xpos", "feats", "lemma"} <= heads.keys():
        return {}
    right = {"xpos": 0, "feats": 0, "lemma": 0}
    n = 0
    for s, p in zip(sentences, pred, strict=True):
        n += len(s.words)
        right["xpos"] += sum(a == b for a, b in zip(p["xpos"].labels, s.xpos, strict=True))
        right["feats"] += sum(a == b for a, b in zip(p["feats"].labels, s.feats, strict=True))
        right["lemma"] += sum(a == b for a, b in zip(p["lemma"].labels, s.lemmas, strict=True))
    return {f"{h}_acc": 100 * v / max(n, 1) for h, v in right.items()}


def _parse_scores(sentences: list[Sentence], pred: list[WordTags]) -> dict:
    """UAS and LAS (%) on gold words, the relation's universal part compared as the CoNLL 2018
    scorer's LAS does, and the share of sentences whose heads make one well-formed tree."""
    if not pred or "deprel" not in pred[0]:
        return {}
    words = attached = labelled = trees = 0
    for s, p in zip(sentences, pred, strict=True):
        tags = p["deprel"]
        assert tags.heads is not None
        heads = [0 if h == i else h + 1 for i, h in enumerate(tags.heads)]  # CoNLL-U's
        trees += _is_tree(heads)
        for got, gold, rel, gold_rel in zip(heads, s.heads, tags.labels, s.deprels, strict=True):
            words += 1
            attached += got == gold
            labelled += got == gold and rel.split(":")[0] == gold_rel.split(":")[0]
    n = max(len(sentences), 1)
    return {"uas": 100 * attached / max(words, 1), "las": 100 * labelled / max(words, 1),
            "valid_trees": 100 * trees / n}  # fmt: skip


def _is_tree(heads: list[int]) -> bool:
    """CoNLL-U heads (1-based, 0 the root): one root, and every word reaches it."""
    if heads.count(0) != 1 or not all(0 <= h <= len(heads) for h in heads):
        return False
    for start in range(1, len(heads) + 1):
        node, steps = start, 0
        while node and steps <= len(heads):
            node, steps = heads[node - 1], steps + 1
        if node:
            return False
    return True


def parse_errors(model_dir: Path, data_dir: Path, split: str = "dev") -> str:
    """training.parse_errors' table for the model's parse of the split's gold words."""
    sentences, _ = load_tagging(data_dir, split)
    return error_table(sentences, OnnxModel(model_dir).tag([s.words for s in sentences]))


def evaluate(model_dir: Path, data_dir: Path, split: str = "dev", teacher: bool = False) -> dict:
    """Tagging metrics on gold words (UD+UNER join) and STS-B Spearman, from the ONNX model."""
    model = OnnxModel(model_dir)
    sentences, report = load_tagging(data_dir, split)
    print(f"tagging {len(sentences)} {split} sentences ...", flush=True)
    pred = model.tag([s.words for s in sentences])
    result = tagging_scores(
        [s.upos for s in sentences],
        [p["upos"].labels for p in pred],
        [s.ner for s in sentences],
        [p["ner"].labels for p in pred],
    )
    result |= _morph_scores(model, sentences, pred)
    result |= _parse_scores(sentences, pred)
    result["sentences"] = len(sentences)
    result["skipped_sent_ids"] = report.skipped
    stsb = data_dir / "stsb" / f"sts-{split}.csv"
    if stsb.exists():
        print("STS-B ...", flush=True)
        result["stsb_spearman"] = stsb_spearman(model.embed, data_dir, split)
        if teacher:  # and how near our cosines are to its, at each size
            figures = scale_figures(
                model.embed, lambda s: teacher_vectors(s, progress=False), data_dir, split
            )
            result["teacher_stsb_spearman"] = figures.pop("teacher_stsb")
            result |= {f"scale_{k}": v for k, v in figures.items()}
    return result
