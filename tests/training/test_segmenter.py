"""The segmenter's training text and its ONNX graph: offsets and labels of rebuilt documents,
and an export exact on padded batches that the service's backend runs."""

from __future__ import annotations

import json
import random
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from app.model.backend import OnnxBackend
from app.model.featurize import Features, WordPiece
from app.model.text import tokenize
from training import teacher
from training.segdata import join_document, labelled
from training.segmenter import Segmenter, SegmenterConfig, add_segmenter, save_segmenter

pytestmark = pytest.mark.slow  # torch and the teacher's table

DOC = [["Alice moved to Paris.", "She likes it."], ["Bob stayed home.", "He was sad"]]
sentence = st.text(alphabet="abcXYZ .,!?", min_size=1, max_size=30).filter(str.strip)


@settings(max_examples=50, deadline=None)
@given(st.lists(st.lists(sentence, min_size=1, max_size=4), min_size=1, max_size=4))
def test_plain_joins_keep_every_sentence_at_its_offset(paragraphs: list[list[str]]) -> None:
    paragraphs = [[s.strip() for s in p] for p in paragraphs]
    text, starts = join_document(paragraphs, None)
    flat = [s for p in paragraphs for s in p]
    assert [text[a : a + len(s)] for a, s in zip(starts, flat, strict=True)] == flat


def test_noisy_joins_label_each_sentence_start_and_only_those() -> None:
    wp = WordPiece.from_file(teacher.vocab_file())
    for seed in range(20):
        text, starts = join_document(DOC, random.Random(seed))
        item = labelled(text, starts, wp)
        words = item.labels[item.labels >= 0]
        first = {t.start for t in tokenize(text)} & set(starts)
        assert words.sum() == len(first) == 4
        assert (item.labels[item.features.word_starts] >= 0).all()


def test_export_is_exact_on_padded_batches_and_served(tmp_path: Path, model_dir: Path) -> None:
    torch.manual_seed(0)
    model = Segmenter(SegmenterConfig(hidden=16, layers=1), teacher.input_table())
    run = tmp_path / "segmenter.pt"
    save_segmenter(model, {"threshold": 0.25}, run)
    out = tmp_path / "model"
    shutil.copytree(model_dir, out)
    (out / "segmenter.onnx").unlink(missing_ok=True)
    facts = add_segmenter(run, out)
    assert facts["parity_max_abs_diff"] < 1e-4
    assert json.loads((out / "model.json").read_text())["segmenter"]["threshold"] == 0.25
    backend = OnnxBackend(out, ["cpu"], 1)
    assert backend.spec.segmenter_threshold == 0.25

    def window(ids: list[int], spaces: list[int]) -> Features:
        n = len(ids)
        return Features(np.array(ids), np.ones(n, dtype=np.int64), np.arange(n), np.array(spaces))

    windows = [window([2000, 2001, 2002], [1, 3, 3]), window([2003, 2004], [1, 2])]
    got = backend.segment(windows)  # a padded batch, as the service runs it
    alone = backend.segment(windows[1:])
    assert [len(g) for g in got] == [3, 2]
    np.testing.assert_allclose(got[1], alone[0], atol=1e-6)


def test_a_model_folders_segmenter_is_copied_as_it_is(tmp_path: Path, model_dir: Path) -> None:
    out = tmp_path / "model"
    shutil.copytree(model_dir, out)
    (out / "segmenter.onnx").unlink()
    spec = json.loads((out / "model.json").read_text())
    del spec["segmenter"]
    (out / "model.json").write_text(json.dumps(spec))
    facts = add_segmenter(model_dir, out)
    assert (out / "segmenter.onnx").read_bytes() == (model_dir / "segmenter.onnx").read_bytes()
    shipped = json.loads((model_dir / "card.json").read_text())["segmenter"]
    assert facts == shipped
    assert json.loads((out / "card.json").read_text())["segmenter"] == shipped
    assert OnnxBackend(out, ["cpu"], 1).spec.segmenter_threshold == shipped["threshold"]
