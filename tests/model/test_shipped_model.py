"""The shipped ONNX model: padding invariance (property test), pad content, sha256 vs card."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.model.backend import gate_feeds
from app.model.spec import GATES, LAYER_GATES, outputs_by_task

OUTPUTS = ["upos_logits", "ner_logits", "embedding"]


@pytest.fixture(scope="module")
def session(model_dir: Path) -> ort.InferenceSession:
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    return ort.InferenceSession(
        str(model_dir / "model.onnx"), so, providers=["CPUExecutionProvider"]
    )


def _batch(sentences: list[tuple[list[int], list[int]]], pad_id: int = 0, pad_case: int = 0):
    T = max(len(ids) for ids, _ in sentences)
    ids = np.full((len(sentences), T), pad_id, dtype=np.int64)
    case = np.full((len(sentences), T), pad_case, dtype=np.int64)
    for i, (s_ids, s_case) in enumerate(sentences):
        ids[i, : len(s_ids)], case[i, : len(s_case)] = s_ids, s_case
    lengths = np.array([len(s) for s, _ in sentences], dtype=np.int64)
    return {"input_ids": ids, "case_ids": case, "lengths": lengths}


def _run(session, sentences, outputs=OUTPUTS, **pad):
    feeds = _batch(sentences, **pad)
    names = {i.name for i in session.get_inputs()}
    return dict(
        zip(outputs, session.run(outputs, {**feeds, **gate_feeds(names, outputs)}), strict=True)
    )


def _assert_same_row(a: dict, i: int, b: dict, j: int, n: int) -> None:
    for name in OUTPUTS:
        x, y = (a[name][i, :n], b[name][j, :n]) if name != "embedding" else (a[name][i], b[name][j])
        np.testing.assert_allclose(x, y, atol=1e-4, rtol=0, err_msg=name)


def sentence(min_size: int = 1, max_size: int = 40):
    return st.integers(min_size, max_size).flatmap(
        lambda n: st.tuples(
            st.lists(st.integers(100, 30521), min_size=n, max_size=n),
            st.lists(st.integers(1, 5), min_size=n, max_size=n),
        )
    )


@settings(max_examples=25, deadline=None)
@given(
    target=sentence(),
    others=st.lists(sentence(1, 60), min_size=1, max_size=6),
    position=st.integers(0, 6),
)
def test_sentence_alone_equals_sentence_in_padded_batch(session, target, others, position):
    batch = list(others)
    position = min(position, len(batch))
    batch.insert(position, target)
    alone = _run(session, [target])
    together = _run(session, batch)
    _assert_same_row(together, position, alone, 0, len(target[0]))


@settings(max_examples=10, deadline=None)
@given(
    short=sentence(1, 10),
    long=sentence(30, 50),
    pad_id=st.integers(1, 30521),
    pad_case=st.integers(1, 5),
)
def test_outputs_never_depend_on_pad_content(session, short, long, pad_id, pad_case):
    clean = _run(session, [short, long])
    dirty = _run(session, [short, long], pad_id=pad_id, pad_case=pad_case)
    _assert_same_row(clean, 0, dirty, 0, len(short[0]))


def test_shipped_model_sha256_matches_card(shipped_model_dir: Path):
    card = json.loads((shipped_model_dir / "card.json").read_text())
    digest = hashlib.sha256((shipped_model_dir / "model.onnx").read_bytes()).hexdigest()
    assert digest == card["sha256"]


def test_shipped_model_is_small(shipped_model_dir: Path):
    assert (shipped_model_dir / "model.onnx").stat().st_size < 60e6


def test_each_encoder_runs_when_asked_for_and_gives_the_same_outputs(session):
    assert set(GATES) <= {i.name for i in session.get_inputs()}
    batch = [([2023, 2003, 1037, 3231], [2, 1, 1, 1]), ([7592, 2088], [2, 1])]
    full = _run(session, batch)
    for task in GATES.values():
        outputs = outputs_by_task(OUTPUTS)[task]
        alone = _run(session, batch, outputs)
        for name in outputs:
            np.testing.assert_array_equal(alone[name], full[name], err_msg=name)
    feeds = {**_batch(batch), **{flag: np.array(False) for flag in (*GATES, *LAYER_GATES)}}
    upos, embedding = session.run(["upos_logits", "embedding"], feeds)
    assert upos.size == 0 and embedding.size == 0  # gated off: nothing computed


@settings(max_examples=10, deadline=None)
@given(sentences=st.lists(sentence(1, 30), min_size=1, max_size=4))
def test_embedding_reads_piece_ids_only(session, sentences):
    """/embed feeds no case classes (app.model.featurize.featurize_pieces): the sentence encoder
    must not read them."""
    with_case = _run(session, sentences, ["embedding"])["embedding"]
    without = _run(session, [(ids, [0] * len(ids)) for ids, _ in sentences], ["embedding"])
    np.testing.assert_array_equal(without["embedding"], with_case)
