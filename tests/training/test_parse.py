"""The parsing layer exported: behind a gate of its own inside the tagger's, exact on padded
batches, and its weights outside the graph read back by the decoder from model.json."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.slow  # training, on torch
torch = pytest.importorskip("torch")
onnxruntime = pytest.importorskip("onnxruntime")

from app.model.backend import gate_feeds  # noqa: E402
from app.model.parse import TreeDecoder  # noqa: E402
from app.model.spec import PARSE, read_heads  # noqa: E402
from training.export import (  # noqa: E402
    _parser,
    example_batch,
    example_slice,
    export_onnx,
    layer_outputs_of,
    parity,
)
from training.gate import ungate  # noqa: E402
from training.model import BiGRUModel, ModelConfig  # noqa: E402

LENGTHS = [1, 30, 7, 3, 22, 2]
DATA = Path(os.environ.get("BIGRU_DATA", Path(__file__).resolve().parents[3] / "shared" / "data"))
RELATIONS = ["root", "nsubj", "obj", "punct"]


@pytest.fixture(scope="module")
def parsing_model() -> BiGRUModel:
    torch.manual_seed(0)
    heads = [
        {"name": "upos", "size": 5, "decoder": "softmax"},
        {"name": "ner", "size": 3, "decoder": "crf"},
        {"name": "xpos", "size": 4, "decoder": "softmax", "layer": "morph", "pieces": "first+last"},
    ]
    cfg = ModelConfig(
        vocab_size=2000, emb_dim=24, case_dim=4, hidden=16, layers=1, sent_hidden=12,
        sent_dim=20, heads=heads, morph_hidden=4, morph_input=5, parse_hidden=8,
        parse_input=10, parse_layers=2, parse_arc=6, parse_rel=5, n_rels=len(RELATIONS),
    )  # fmt: skip
    model = BiGRUModel(cfg, torch.randn(2000, 24))
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.1)
    return model.eval()


@pytest.fixture(scope="module")
def onnx_path(parsing_model: BiGRUModel, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("export") / "model.onnx"
    export_onnx(parsing_model, path)
    return path


def test_the_parse_output_matches_pytorch_per_sentence_on_a_padded_batch(
    parsing_model: BiGRUModel, onnx_path: Path
) -> None:
    assert PARSE in parsing_model.output_names()
    assert parity(parsing_model, onnx_path, LENGTHS, vocab=2000) <= 1e-4


@pytest.mark.parametrize(
    "wanted", [["upos_logits"], ["upos_logits", "xpos_logits"], ["upos_logits", PARSE]]
)
def test_each_layer_runs_only_when_its_output_is_wanted(
    parsing_model: BiGRUModel, onnx_path: Path, wanted: list[str]
) -> None:
    session = onnxruntime.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    inputs = {i.name for i in session.get_inputs()}
    assert {"want_tags", "want_embedding", "want_morph", "want_parse"} <= inputs
    ids = np.array([[1000, 1001, 1002]], dtype=np.int64)
    feeds = {"input_ids": ids, "case_ids": np.ones_like(ids), "lengths": np.array([3])}
    every = ["upos_logits", "xpos_logits", PARSE]
    layers = layer_outputs_of(parsing_model)
    full = session.run(every, {**feeds, **gate_feeds(inputs, every, layers)})
    got = session.run(every, {**feeds, **gate_feeds(inputs, wanted, layers)})
    for name, all_on, value in zip(every, full, got, strict=True):
        if name in wanted:
            np.testing.assert_array_equal(value, all_on)
        else:
            assert value.size == 0, name  # its layer did not run


def test_ungate_flattens_every_gate(onnx_path: Path) -> None:
    import onnx

    flat = ungate(onnx.load(str(onnx_path)))
    assert not {"want_tags", "want_morph", "want_parse"} & {i.name for i in flat.graph.input}
    assert not any(n.op_type == "If" for n in flat.graph.node)


def test_model_json_gives_the_decoder_the_parsers_weights(parsing_model: BiGRUModel) -> None:
    section = _parser(parsing_model, RELATIONS)
    spec = json.loads(json.dumps({"heads": [], "parser": section}))  # through JSON, as read
    [head] = read_heads(spec)
    assert (head.name, head.decoder, head.labels) == ("deprel", "tree", RELATIONS)
    assert head.tree is not None and TreeDecoder(head.tree).width == 2 * 6 + 1 + 2 * 5


def _slice(source: Path, out: Path, n: int) -> Path:
    """The first `n` sentences of a CoNLL-U file, proper nouns marked as PER entities in MISC
    (as /tag's CoNLL-U writes entities)."""
    blocks = source.read_text(encoding="utf-8").split("\n\n")[:n]
    rows = []
    for block in blocks:
        for line in block.splitlines():
            cols = line.split("\t")
            if len(cols) == 10 and cols[0].isdigit() and cols[3] == "PROPN":
                cols[9] = "NER=B-PER" if cols[9] == "_" else f"NER=B-PER|{cols[9]}"
            rows.append("\t".join(cols))
        rows.append("")
    out.write_text("\n".join(rows) + "\n", encoding="utf-8")
    return out


@pytest.fixture(scope="module")
def own_treebank(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`bigru train` on a slice of EWT with its trees, exported."""
    from training.cli import main

    ewt = DATA / "ud-ewt"
    if not ewt.is_dir():
        pytest.skip(f"no EWT at {ewt} (BIGRU_DATA)")
    root = tmp_path_factory.mktemp("treebank")
    train = _slice(ewt / "en_ewt-ud-train.conllu", root / "train.conllu", 60)
    dev = _slice(ewt / "en_ewt-ud-dev.conllu", root / "dev.conllu", 15)
    main(["train", "--train", str(train), "--dev", str(dev), "--out", str(root / "run"),
          "--epochs", "2", "--hidden", "16", "--layers", "1", "--threads", "1"])  # fmt: skip
    main(["export", "--tagger", str(root / "run" / "tagger.pt"), "--out", str(root / "model")])
    return root / "model"


def test_bigru_train_reads_trees_and_entities_and_the_export_parses(own_treebank: Path) -> None:
    from fastapi.testclient import TestClient

    from app.config import Settings
    from app.main import create_app

    with TestClient(create_app(Settings(model_dir=own_treebank))) as client:
        heads = {h["name"]: h["decoder"] for h in client.get("/info").json()["heads"]}
        assert heads == {"tags": "softmax", "ner": "crf", "deprel": "tree"}
        [tagged] = client.post("/tag", json={"inputs": "Alice saw Bob. He left."}).json()
    tokens = tagged["tokens"]
    for s in tagged["sentences"]:
        inside = range(s["token_start"], s["token_end"])
        assert all(tokens[i]["head"] in inside for i in inside)  # heads never leave a sentence
        assert sum(tokens[i]["head"] == i for i in inside) == 1  # one root


def test_each_sentence_gets_the_same_outputs_alone_as_in_the_padded_batch(
    parsing_model: BiGRUModel, onnx_path: Path
) -> None:
    """Exactly for the heads' logits (the gated morphology layer runs as the tagger does,
    whatever the batch); the parse's features to float32 rounding: ONNX Runtime's products in
    the parsing layer round a row differently in a batch than alone (within 1e-6)."""
    session = onnxruntime.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    inputs = {i.name for i in session.get_inputs()}
    every = ["upos_logits", "xpos_logits", PARSE]
    gates = gate_feeds(inputs, every, layer_outputs_of(parsing_model))
    batch = example_batch(LENGTHS, vocab=2000)
    together = session.run(every, {**batch, **gates})
    for i, n in enumerate(LENGTHS):
        alone = session.run(every, {**example_slice(batch, i, n), **gates})
        for name, a, t in zip(every, alone, together, strict=True):
            if name == PARSE:
                np.testing.assert_allclose(a[0], t[i, :n], rtol=1e-5, atol=1e-6, err_msg=name)
            else:
                np.testing.assert_array_equal(a[0], t[i, :n], err_msg=name)
