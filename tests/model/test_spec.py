"""app.model.spec: what a model directory says (heads in either model.json form, the card's name
and version, the segmenter and lexicon beside the model) and what it refuses (a missing or
unreadable file, a checksum that is not the card's, a CRF of the wrong shape); outputs per task."""

from __future__ import annotations

import dataclasses
import gzip
import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from app.model.errors import ModelLoadError
from app.model.lexicon import LEXICON_FILE
from app.model.spec import (
    BOUNDARY,
    EMBEDDING,
    SEGMENTER_FILE,
    ModelSpec,
    file_sha256,
    outputs_by_task,
    read_heads,
)
from tests.helpers import fake_spec


def edit_model_json(model_copy: Path, **changes: Any) -> dict[str, Any]:
    """Set top-level fields of model.json (None removes one); its old content back."""
    spec = json.loads((model_copy / "model.json").read_text())
    old = json.loads(json.dumps(spec))
    for key, value in changes.items():
        if value is None:
            spec.pop(key, None)
        else:
            spec[key] = value
    (model_copy / "model.json").write_text(json.dumps(spec))
    return old


def test_the_model_directory_loads(model_dir: Path) -> None:
    spec = ModelSpec.load(model_dir)
    onnx = (model_dir / "model.onnx").read_bytes()
    assert spec.sha256 == file_sha256(model_dir / "model.onnx") == hashlib.sha256(onnx).hexdigest()
    assert spec.vocab == (model_dir / "vocab.txt").read_text(encoding="utf-8").splitlines()
    names = [h.name for h in spec.heads]
    assert len(set(names)) == len(names) and spec.tasks[0] == "tag"
    assert (EMBEDDING in spec.outputs) == (spec.embedding_dim is not None)
    assert spec.segmenter == (model_dir / SEGMENTER_FILE).is_file()
    assert (spec.lexicon is not None) == (model_dir / LEXICON_FILE).is_file()


def test_card_gives_name_and_version(model_copy: Path) -> None:
    (model_copy / "card.json").unlink(missing_ok=True)
    spec = ModelSpec.load(model_copy)
    assert (spec.name, spec.version) == ("bigru-test", "unknown")
    card = {"name": "bigru-en", "version": "1.2.0", "sha256": spec.sha256}
    (model_copy / "card.json").write_text(json.dumps(card))
    spec = ModelSpec.load(model_copy)
    assert (spec.name, spec.version) == ("bigru-en", "1.2.0")


@pytest.mark.parametrize("name", ["model.onnx", "model.json", "vocab.txt"])
def test_missing_file(model_copy: Path, name: str) -> None:
    (model_copy / name).unlink()
    with pytest.raises(ModelLoadError, match=name):
        ModelSpec.load(model_copy)


def test_missing_directory(tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError, match="not found"):
        ModelSpec.load(tmp_path / "nowhere")


def test_corrupt_model_json(model_copy: Path) -> None:
    (model_copy / "model.json").write_text("{")
    with pytest.raises(ModelLoadError, match="unreadable"):
        ModelSpec.load(model_copy)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"decoder": "beam"}, "unknown decoder 'beam'"),
        ({"pieces": "last"}, "unknown pieces 'last'"),
        ({"labels": None}, "KeyError"),
    ],
)
def test_a_head_it_cannot_read_is_refused(
    model_copy: Path, change: dict[str, Any], message: str
) -> None:
    heads = [dict(h) for h in edit_model_json(model_copy)["heads"]]
    heads[0] = {k: v for k, v in {**heads[0], **change}.items() if v is not None}
    edit_model_json(model_copy, heads=heads)
    with pytest.raises(ModelLoadError, match=message):
        ModelSpec.load(model_copy)


def test_a_vocabulary_without_unk_is_refused(model_copy: Path) -> None:
    vocab = (model_copy / "vocab.txt").read_text(encoding="utf-8").splitlines()
    (model_copy / "vocab.txt").write_text("\n".join(p for p in vocab if p != "[UNK]"))
    with pytest.raises(ModelLoadError, match=r"no \[UNK\] piece"):
        ModelSpec.load(model_copy)


def test_sha256_mismatch_with_card(model_copy: Path) -> None:
    (model_copy / "card.json").write_text(json.dumps({"name": "x", "sha256": "0" * 64}))
    with pytest.raises(ModelLoadError, match="sha256"):
        ModelSpec.load(model_copy)


def test_crf_shapes_must_match_the_labels(model_copy: Path) -> None:
    heads = edit_model_json(model_copy)["heads"]
    crf_head = next(h for h in heads if h["decoder"] == "crf")
    crf_head["labels"] = [*crf_head["labels"], "B-MISC", "I-MISC"]  # its CRF is for fewer
    edit_model_json(model_copy, heads=heads)
    with pytest.raises(ModelLoadError, match=f"CRF shapes do not match .* {crf_head['name']}"):
        ModelSpec.load(model_copy)


@pytest.mark.slow  # seconds: kept out of make test-fast
def test_heads_listed_in_model_json_serve_as_the_label_lists_do(
    model_dir: Path, model_copy: Path
) -> None:
    """An export writes `heads`; bigru-en's model.json names `upos_labels`, `ner_labels` and
    `crf`. Both forms are the same model to the service, byte for byte on /tag."""
    from fastapi.testclient import TestClient

    from app.config import Settings
    from app.main import create_app

    spec = json.loads((model_copy / "model.json").read_text())
    if "heads" not in spec:  # the other form, written as an export writes it
        upos = {"name": "upos", "decoder": "softmax", "labels": spec.pop("upos_labels")}
        ner = {"name": "ner", "decoder": "crf", "labels": spec.pop("ner_labels")}
        spec["heads"] = [upos, {**ner, "crf": spec.pop("crf")}]
        (model_copy / "model.json").write_text(json.dumps(spec))
    for a, b in zip(ModelSpec.load(model_copy).heads, ModelSpec.load(model_dir).heads, strict=True):
        assert (a.name, a.decoder, a.labels) == (b.name, b.decoder, b.labels)
        for k in ("transitions", "start", "end") if a.crf is not None else ():
            np.testing.assert_array_equal(a.crf[k], b.crf[k])
    body = {"inputs": ["Barack Obama visited Paris.", "Apple sued Samsung in Seoul."]}
    answers = []
    for directory in (model_dir, model_copy):
        with TestClient(create_app(Settings(model_dir=directory))) as client:
            answers.append(client.post("/tag", json=body).content)
    assert answers[0] == answers[1]


def test_the_label_lists_form_is_a_softmax_upos_and_a_crf_ner() -> None:
    n = 3
    crf = {"transitions": np.eye(n).tolist(), "start": [0.0] * n, "end": [1.0] * n}
    upos, ner = read_heads(
        {"upos_labels": ["NOUN", "VERB"], "ner_labels": ["O", "B-X", "I-X"], "crf": crf}
    )
    assert (upos.name, upos.decoder, upos.labels, upos.crf) == (
        "upos",
        "softmax",
        ["NOUN", "VERB"],
        None,
    )
    assert (ner.name, ner.decoder, ner.labels) == ("ner", "crf", ["O", "B-X", "I-X"])
    assert ner.crf is not None and ner.crf["transitions"].shape == (n, n)
    np.testing.assert_array_equal(ner.crf["end"], np.ones(n))


def test_tag_decoder_has_each_heads_decoder() -> None:
    crf = {"transitions": np.zeros((3, 3)).tolist(), "start": [0.0] * 3, "end": [0.0] * 3}
    heads = read_heads(
        {
            "heads": [
                {"name": "upos", "labels": ["NOUN", "VERB"], "decoder": "softmax"},
                {"name": "ner", "labels": ["O", "B-X", "I-X"], "decoder": "crf", "crf": crf},
                {
                    "name": "lemma",
                    "labels": ["=", "-1"],
                    "decoder": "lemma",
                    "pieces": "first+last",
                },
            ]
        }
    )
    spec = dataclasses.replace(fake_spec(), heads=heads)
    upos, ner, lemma = spec.tag_decoder().heads
    assert [d.name for d in (upos, ner, lemma)] == ["upos", "ner", "lemma"]
    assert upos.crf is None and ner.crf is not None and lemma.crf is None
    assert (upos.last_piece, upos.lemma) == (False, False)
    assert (lemma.last_piece, lemma.lemma) == (True, True)


def test_outputs_by_task() -> None:
    outputs = ["upos_logits", "ner_logits", EMBEDDING]
    assert outputs_by_task(outputs) == {"tag": ["upos_logits", "ner_logits"], "embed": [EMBEDDING]}
    assert outputs_by_task(outputs[:2])["embed"] == []


def test_the_tasks_are_those_the_model_has_outputs_for() -> None:
    both = fake_spec(heads=("upos", "ner"))
    assert both.outputs == ["upos_logits", "ner_logits", EMBEDDING]
    assert both.tasks == ["tag", "embed"] and not both.segmenter
    tagger = fake_spec(embedding_dim=None)
    assert tagger.task_outputs == {"tag": ["upos_logits", "ner_logits"], "embed": [], "segment": []}
    assert tagger.tasks == ["tag"]
    segmenting = dataclasses.replace(tagger, segmenter_threshold=-0.5)
    assert segmenting.segmenter and segmenting.task_outputs["segment"] == [BOUNDARY]
    assert segmenting.tasks == ["tag", "segment"]


def test_the_segmenter_and_its_model_json_section_come_together(model_copy: Path) -> None:
    (model_copy / "card.json").unlink(missing_ok=True)  # no card naming a segmenter
    section = json.loads((model_copy / "model.json").read_text()).get("segmenter")
    if section is not None:
        assert ModelSpec.load(model_copy).segmenter_threshold == section["threshold"]
        (model_copy / SEGMENTER_FILE).unlink()
    else:
        (model_copy / SEGMENTER_FILE).write_bytes(b"a graph")
    with pytest.raises(ModelLoadError, match="come together"):
        ModelSpec.load(model_copy)


def test_a_segmenter_that_is_not_the_cards_is_refused(model_copy: Path) -> None:
    card = json.loads((model_copy / "card.json").read_text())
    if "segmenter" not in card:
        pytest.skip("this model has no segmenter")
    (model_copy / "segmenter.onnx").write_bytes(b"\x08\x07not the shipped graph")
    with pytest.raises(ModelLoadError, match="segmenter.onnx: sha256"):
        ModelSpec.load(model_copy)


def test_a_lexicon_that_is_not_the_cards_is_refused(model_copy: Path) -> None:
    card = json.loads((model_copy / "card.json").read_text())
    if "lexicon" not in card:
        pytest.skip("this model has no lexicon")
    (model_copy / LEXICON_FILE).write_bytes(gzip.compress(b"{}"))
    with pytest.raises(ModelLoadError, match="lexicon.json.gz: sha256"):
        ModelSpec.load(model_copy)


def test_a_lexicon_needs_the_heads_it_refines(model_copy: Path) -> None:
    (model_copy / "card.json").unlink()
    (model_copy / LEXICON_FILE).write_bytes(gzip.compress(b"{}"))
    spec = json.loads((model_copy / "model.json").read_text())
    spec["heads"] = [h for h in spec["heads"] if h["name"] != "xpos"]
    (model_copy / "model.json").write_text(json.dumps(spec))
    with pytest.raises(ModelLoadError, match=r"no \['xpos'\] heads"):
        ModelSpec.load(model_copy)


def test_a_lexicon_the_card_names_must_be_there(model_copy: Path) -> None:
    card = json.loads((model_copy / "card.json").read_text())
    if "lexicon" not in card:
        pytest.skip("this model has no lexicon")
    (model_copy / LEXICON_FILE).unlink()
    with pytest.raises(ModelLoadError, match="lexicon.json.gz not found; card.json names it"):
        ModelSpec.load(model_copy)
