"""Provider choice, the tasks the core runs (tag, embed, segment a batch), running only the
requested outputs, and a graph that is not what model.json says (what model.json and the card
say themselves: test_spec.py)."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pytest

from app.model.backend import OnnxBackend, select_providers
from app.model.errors import ModelLoadError, RunError
from app.model.featurize import Features, WordPiece, featurize, featurize_pieces
from app.model.parse import TreeDecoder
from app.model.spec import PARSE

CPU, CUDA = "CPUExecutionProvider", "CUDAExecutionProvider"


@pytest.mark.parametrize(
    "requested, available, expected",
    [
        (["cpu"], [CPU], [CPU]),
        (["cuda", "cpu"], [CUDA, CPU], [CUDA, CPU]),
        (["cuda"], [CUDA, CPU], [CUDA, CPU]),
        (["cpu", "cuda"], [CUDA, CPU], [CUDA, CPU]),
        ([], [CPU], [CPU]),
    ],
)
def test_select_providers(requested: list[str], available: list[str], expected: list[str]) -> None:
    assert select_providers(requested, available) == expected


def test_cuda_unavailable_falls_back_to_cpu_with_one_line(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="app.model.backend"):
        assert select_providers(["cuda", "cpu"], ["AzureExecutionProvider", CPU]) == [CPU]
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 1 and "CUDAExecutionProvider requested but not available" in lines[0]


@pytest.fixture(scope="module")
def shipped(model_dir: Path) -> OnnxBackend:
    return OnnxBackend(model_dir, ["cpu"], intra_op_threads=1)


SENTENCES = (["The", "cats", "were", "running", "."], ["Paris", "is", "big"], ["Hi"])


def test_tag_answers_each_sentence_as_alone_with_lemmas_made(shipped: OnnxBackend) -> None:
    wp = WordPiece(shipped.spec.vocab)
    batch = [featurize(words, wp) for words in SENTENCES]
    together = shipped.tag(batch)
    for got, alone in zip(together, [shipped.tag([f])[0] for f in batch], strict=True):
        for head, tags in got.items():  # the parse's scores to rounding (its products'), not bits
            same = alone[head].scores == pytest.approx(tags.scores, rel=1e-6)
            exact = alone[head].scores == tags.scores
            assert (alone[head].labels, alone[head].heads) == (tags.labels, tags.heads)
            assert same if head == "deprel" else exact, head
    first = together[0]
    assert list(first) == [h.name for h in shipped.spec.heads]
    assert first["lemma"].labels == ["the", "cat", "be", "run", "."]  # lemmas, not edit scripts
    assert first["upos"].labels[1] == "NOUN" and len(first["upos"].scores) == 5


def test_tag_decodes_only_the_heads_asked_for(shipped: OnnxBackend) -> None:
    wp = WordPiece(shipped.spec.vocab)
    [tags] = shipped.tag([featurize(["Paris", "is", "big"], wp, frozenset({"ner"}))])
    assert list(tags) == ["ner"] and tags["ner"].labels[0] == "B-LOC"


def test_embed_gives_one_vector_per_sentence_as_alone(shipped: OnnxBackend) -> None:
    wp = WordPiece(shipped.spec.vocab)
    batch = [featurize_pieces(words, wp) for words in SENTENCES]
    vectors = shipped.embed(batch)
    assert [v.shape for v in vectors] == [(shipped.spec.embedding_dim,)] * 3
    for f, v in zip(batch, vectors, strict=True):
        np.testing.assert_allclose(shipped.embed([f])[0], v, atol=1e-6)


def test_segment_gives_a_logit_per_piece_of_each_window(shipped: OnnxBackend) -> None:
    wp = WordPiece(shipped.spec.vocab)
    windows = [featurize(w, wp) for w in SENTENCES]
    windows = [
        Features(f.input_ids, f.case_ids, f.word_starts, np.zeros(f.length, np.int64))
        for f in windows
    ]
    logits = shipped.segment(windows)
    assert [len(x) for x in logits] == [f.length for f in windows]
    np.testing.assert_allclose(shipped.segment(windows[1:2])[0], logits[1], atol=1e-6)


def test_loads_and_returns_the_requested_outputs(model_copy: Path) -> None:
    backend = OnnxBackend(model_copy, ["cpu"], intra_op_threads=1)
    assert backend.providers == [CPU]
    feeds = {
        "input_ids": np.array([[2000, 2001, 2002]], dtype=np.int64),
        "case_ids": np.ones((1, 3), dtype=np.int64),
        "lengths": np.array([3], dtype=np.int64),
    }
    emb = backend.run(feeds, ["embedding"])
    assert emb.keys() == {"embedding"} and emb["embedding"].shape == (1, backend.spec.embedding_dim)
    wanted = backend.spec.outputs[:-1]  # every head's output, the embedding left out
    tags = backend.run(feeds, wanted)
    for head in backend.spec.heads:
        if head.tree is None:
            assert tags[f"{head.name}_logits"].shape == (1, 3, len(head.labels))
        else:  # the parse's per-piece features
            assert tags[PARSE].shape == (1, 3, TreeDecoder(head.tree).width)


def test_run_failure_is_a_run_error(model_copy: Path) -> None:
    backend = OnnxBackend(model_copy, ["cpu"], intra_op_threads=1)
    bad = {"input_ids": np.zeros((1, 2), dtype=np.float32)}
    with pytest.raises(RunError, match="inference failed"):
        backend.run(bad, ["embedding"])


def test_corrupt_onnx(model_copy: Path) -> None:
    (model_copy / "model.onnx").unlink()
    (model_copy / "model.onnx").write_bytes(b"not a model")
    (model_copy / "card.json").unlink(missing_ok=True)  # no checksum to catch it first
    with pytest.raises(ModelLoadError, match="cannot load"):
        OnnxBackend(model_copy, ["cpu"], 1)


def _edit_head(model_copy: Path, name: str, **changes: object) -> dict:
    """Change one head of model.json; its old form back."""
    spec = json.loads((model_copy / "model.json").read_text())
    head = next(h for h in spec["heads"] if h["name"] == name)
    old = dict(head)
    head.update(changes)
    (model_copy / "model.json").write_text(json.dumps(spec))
    return old


def test_upos_label_count_mismatch(model_copy: Path) -> None:
    labels = _edit_head(model_copy, "upos")["labels"]
    _edit_head(model_copy, "upos", labels=labels[:-1])
    with pytest.raises(ModelLoadError, match="upos_logits"):
        OnnxBackend(model_copy, ["cpu"], 1)


def test_ner_label_count_mismatch(model_copy: Path) -> None:
    old = _edit_head(model_copy, "ner")
    n = len(old["labels"]) + 2
    crf = {"transitions": np.zeros((n, n)).tolist(), "start": [0.0] * n, "end": [0.0] * n}
    _edit_head(model_copy, "ner", labels=[*old["labels"], "B-MISC", "I-MISC"], crf=crf)
    with pytest.raises(ModelLoadError, match="ner_logits"):
        OnnxBackend(model_copy, ["cpu"], 1)


def test_embedding_dim_mismatch(model_copy: Path) -> None:
    spec = json.loads((model_copy / "model.json").read_text())
    (model_copy / "model.json").write_text(json.dumps({**spec, "embedding_dim": 7}))
    with pytest.raises(ModelLoadError, match="embedding"):
        OnnxBackend(model_copy, ["cpu"], 1)
