"""Export route: ONNX Runtime on a padded batch equals PyTorch on each sentence alone."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.slow  # training, on torch
torch = pytest.importorskip("torch")

from training.export import example_batch, export_onnx, parity  # noqa: E402
from training.model import BiGRUModel, ModelConfig  # noqa: E402

LENGTHS = [1, 60, 17, 3, 42, 8, 25, 2, 60, 1]


@pytest.fixture(scope="module", params=[0, 10], ids=["table", "projected"])
def small_model(request: pytest.FixtureRequest) -> BiGRUModel:
    """Both encoders on the table itself, or on narrower projections of it (folded by the
    export into tables of their own)."""
    torch.manual_seed(0)
    cfg = ModelConfig(
        vocab_size=2000, emb_dim=24, case_dim=4, tag_input=request.param, hidden=16, layers=2,
        sent_input=request.param, sent_hidden=12, sent_dim=20,
    )  # fmt: skip
    model = BiGRUModel(cfg, torch.randn(2000, 24))
    with torch.no_grad():  # a CRF and heads that are not all-zero
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.1)
    return model.eval()


@pytest.fixture(scope="module")
def onnx_path(small_model, tmp_path_factory):
    path = tmp_path_factory.mktemp("export") / "model.onnx"
    export_onnx(small_model, path)
    return path


def test_onnx_matches_pytorch_per_sentence_on_padded_batch(small_model, onnx_path):
    assert parity(small_model, onnx_path, LENGTHS, vocab=2000) <= 1e-4


def test_export_folds_the_projections_into_tables(small_model, onnx_path):
    """A projected encoder's graph looks its rows up: no matmul over the input table."""
    import onnx

    names = {t.name for t in onnx.load(str(onnx_path)).graph.initializer}
    projected = small_model.cfg.tag_input > 0
    assert ({"model.folded_tag", "model.folded_sent"} <= names) == projected
    assert ("model.table" in names) != projected
    assert not hasattr(small_model, "folded_tag")  # the exporter leaves the model as it was


def test_pytorch_padded_batch_equals_each_sentence_alone(small_model):
    """The packed GRU itself: the backward direction starts at each sentence's own end."""
    batch = example_batch(LENGTHS, vocab=2000)
    with torch.inference_mode():
        out = small_model(
            *(torch.from_numpy(batch[k]) for k in ("input_ids", "case_ids", "lengths"))
        )
        for i, n in enumerate(LENGTHS):
            alone = small_model(
                torch.from_numpy(batch["input_ids"][i : i + 1, :n]),
                torch.from_numpy(batch["case_ids"][i : i + 1, :n]),
                torch.tensor([n]),
            )
            assert torch.allclose(out[0][i, :n], alone[0][0], atol=1e-5)
            assert torch.allclose(out[2][i], alone[2][0], atol=1e-5)


def test_unpacked_gru_would_fail_this_check(small_model):
    """Guard that the check above can fail: a plain GRU on padded input differs."""
    batch = example_batch([3, 20], vocab=2000)
    x = small_model.embed_pieces(torch.from_numpy(batch["input_ids"]))
    with torch.inference_mode():
        if small_model.sent_in is not None:
            x = small_model.sent_in(x)
        padded, _ = small_model.sent.gru(x)
        alone, _ = small_model.sent.gru(x[:1, :3])
    assert not torch.allclose(padded[0, :3], alone[0], atol=1e-4)


def test_exported_graph_has_dynamic_axes(onnx_path):
    import onnx

    from training.gate import ungate

    graph = ungate(onnx.load(str(onnx_path))).graph
    dims = {
        i.name: [d.dim_param or d.dim_value for d in i.type.tensor_type.shape.dim]
        for i in graph.input
    }
    assert dims["input_ids"] == ["batch", "time"] and dims["lengths"] == ["batch"]
    grus = [n for n in graph.node if n.op_type == "GRU"]
    assert grus and all(len(n.input) >= 5 and n.input[4] for n in grus), "GRU without sequence_lens"


def test_each_encoder_is_behind_its_own_gate(onnx_path):
    import onnx

    from app.model.spec import GATES

    graph = onnx.load(str(onnx_path)).graph
    assert set(GATES) <= {i.name for i in graph.input}
    assert not [n for n in graph.node if n.op_type == "GRU"], "a GRU runs whatever is asked"
    grus = {
        n.input[0]: [
            g
            for a in n.attribute
            if a.name == "then_branch"
            for g in a.g.node
            if g.op_type == "GRU"
        ]
        for n in graph.node
        if n.op_type == "If"
    }
    assert {k: len(v) for k, v in grus.items()} == {"want_tags": 2, "want_embedding": 1}
