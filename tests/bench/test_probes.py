"""The model-design probes: FLOP counting by the documented formula, and tag-path models
side by side."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from bench.probes import tagpath
from bench.probes.flops import count_flops
from tests.helpers import ROOT

IN, H, N_TAG, D_EMB = 5, 4, 3, 6  # GRU input and hidden sizes, head widths


def _tiny_graph(path: Path) -> None:
    """x (T, B, IN) -> bidirectional GRU -> per-piece MatMul (tag) and mean -> Gemm (embed)."""
    rng = np.random.default_rng(0)

    def weight(name: str, *shape: int) -> onnx.TensorProto:
        return numpy_helper.from_array(rng.standard_normal(shape).astype(np.float32), name)

    nodes = [
        helper.make_node("GRU", ["x", "W", "R"], ["y"], hidden_size=H, direction="bidirectional"),
        helper.make_node("MatMul", ["y", "head"], ["upos_logits"]),  # y (T, 2, B, H)
        helper.make_node("ReduceMean", ["y"], ["pooled"], axes=[0, 1], keepdims=0),  # (B, H)
        helper.make_node("Gemm", ["pooled", "proj"], ["embedding"], transB=1),
    ]
    graph = helper.make_graph(
        nodes,
        "tiny",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["T", "B", IN])],
        [
            helper.make_tensor_value_info("upos_logits", TensorProto.FLOAT, None),
            helper.make_tensor_value_info("embedding", TensorProto.FLOAT, None),
        ],
        [
            weight("W", 2, 3 * H, IN),
            weight("R", 2, 3 * H, H),
            weight("head", H, N_TAG),
            weight("proj", D_EMB, H),
        ],
    )
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))


def test_count_flops_follows_the_documented_formula(tmp_path: Path) -> None:
    _tiny_graph(tmp_path / "tiny.onnx")
    counted = count_flops(tmp_path / "tiny.onnx")
    gru = 2 * 2 * 3 * H * (IN + H)  # two directions
    assert counted["per_path"]["tag"] == {"piece": gru + 2 * H * N_TAG, "sentence": 0}
    assert counted["per_path"]["embed"] == {"piece": gru, "sentence": 2 * D_EMB * H}
    by_op = {n["op"]: n for n in counted["nodes"]}
    assert by_op["GRU"]["paths"] == ["tag", "embed"]
    assert by_op["MatMul"]["paths"] == ["tag"] and by_op["MatMul"]["per"] == "piece"
    assert by_op["Gemm"]["paths"] == ["embed"] and by_op["Gemm"]["per"] == "sentence"


def test_count_flops_on_the_model(model_dir: Path) -> None:
    counted = count_flops(model_dir / "model.onnx")
    tag, embed = counted["per_path"]["tag"], counted["per_path"]["embed"]
    assert tag["piece"] > embed["piece"] > 0 and embed["sentence"] > 0 and tag["sentence"] == 0
    grus = [n for n in counted["nodes"] if n["op"] == "GRU"]
    assert grus and all(len(n["paths"]) == 1 for n in grus)  # the encoders share no GRU


@pytest.mark.slow  # git, and timed runs of two models
def test_tagpath_compares_models_side_by_side(ewt_data: Path, tmp_path: Path) -> None:
    """bench.probes.tagpath on the shipped model twice, once read out of git history: the FLOP count
    and a speed for each, relative to the first."""
    out = tmp_path / "tagpath.json"
    tagpath.main(
        ["head=git:HEAD", f"here={ROOT / 'models' / 'bigru-en'}"]
        + ["--data", str(ewt_data)]
        + ["--rounds", "2", "--seconds", "0.05", "--out", str(out)]
    )
    result = json.loads(out.read_text())
    assert list(result) == ["head", "here"]
    assert result["head"]["mflop_per_piece"] == pytest.approx(result["here"]["mflop_per_piece"])
    assert result["head"]["speed_vs_head"] == 1.0
    assert all(len(row["rounds"]) == 2 and row["pieces_per_s"] > 0 for row in result.values())
