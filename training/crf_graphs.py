"""The CRF decoder's two loops over word positions as ONNX graphs (app/model/graphs/), so that
ONNX Runtime runs them without the GIL: in numpy they were a dozen small calls per position,
each holding the GIL, and a worker decoding held up the others and the event loop.

`python -m training.crf_graphs` writes them; tests/model/test_crf.py checks that the files are
what this makes. Any label set: the transitions come in as inputs. Each step does per row what
app.model.crf's numpy reference does, and sums only along a row's last axis, so that a sentence
gets the same bits alone and in any batch. The probabilities come padded to a width `k` of a
multiple of 8 (zeros past the labels), so that each row is whole SIMD words at the same
alignment: ONNX Runtime's sums over a row then add in one order whatever the row's place.

- crf_forward: Viterbi's best scores and back-pointers, and the forward (alpha) probabilities,
  each step rescaled to sum 1.
- crf_backward: the back-pointers followed from each sentence's last label, and the backward
  (beta) probabilities, reset to the end weights at each sentence's last word.
"""

from __future__ import annotations

from pathlib import Path

import onnx
from onnx import TensorProto, helper

OUT = Path(__file__).resolve().parents[1] / "app" / "model" / "graphs"
OPSET = 18
_F, _I, _B = TensorProto.DOUBLE, TensorProto.INT64, TensorProto.BOOL


def _value(name: str, kind: int, shape: list[str | int]) -> onnx.ValueInfoProto:
    return helper.make_tensor_value_info(name, kind, shape)


def _axes(name: str, *axes: int) -> onnx.NodeProto:
    return helper.make_node(
        "Constant", [], [name], value=helper.make_tensor(name, _I, [len(axes)], list(axes))
    )


def _normalized(x: str, out: str, prefix: str) -> list[onnx.NodeProto]:
    """`out` = x / its row sums (B, n)."""
    return [
        helper.make_node("ReduceSum", [x, "axis1"], [f"{prefix}_z"], keepdims=1),
        helper.make_node("Div", [x, f"{prefix}_z"], [out]),
    ]


def forward() -> onnx.ModelProto:
    """Inputs: score0 (B, n) and alpha0 (B, k) at the first word; emissions (B, S, n) and E,
    the exponentiated emissions (B, S, k), of the words after it; transitions (n, n) and MT,
    the exponentiated transitions transposed (k, k); what is k wide is padded with zeros.
    Outputs per step: back and score (B, S, n), alpha (B, S, k)."""
    scan = helper.make_node(
        "Scan",
        ["score0", "alpha0", "emissions", "E"],
        ["score_last", "alpha_last", "back", "score", "alpha"],
        body=_forward_step(),
        num_scan_inputs=2,
        scan_input_axes=[1, 1],
        scan_output_axes=[1, 1, 1],
    )
    graph = helper.make_graph(
        [_axes("axis1", 1), _axes("axis2", 2), scan],
        "crf_forward",
        [
            _value("score0", _F, ["B", "n"]),
            _value("alpha0", _F, ["B", "k"]),
            _value("emissions", _F, ["B", "S", "n"]),
            _value("E", _F, ["B", "S", "k"]),
            _value("transitions", _F, ["n", "n"]),
            _value("MT", _F, ["k", "k"]),
        ],
        [
            _value("back", _I, ["B", "S", "n"]),
            _value("score", _F, ["B", "S", "n"]),
            _value("alpha", _F, ["B", "S", "k"]),
        ],
    )
    return _model(graph)


def _forward_step() -> onnx.GraphProto:
    """One word: Viterbi's best scores and back-pointers, and alpha rescaled to sum 1."""
    return helper.make_graph(
        [
            helper.make_node("Unsqueeze", ["score", "axis2"], ["score3"]),
            helper.make_node("Add", ["score3", "transitions"], ["cand"]),  # (B, from, to)
            helper.make_node("ArgMax", ["cand"], ["back"], axis=1, keepdims=0),
            helper.make_node("ReduceMax", ["cand", "axis1"], ["best"], keepdims=0),
            helper.make_node("Add", ["best", "em"], ["score_next"]),
            helper.make_node("Unsqueeze", ["alpha", "axis1"], ["alpha3"]),
            helper.make_node("Mul", ["alpha3", "MT"], ["moves"]),  # (B, to, from)
            helper.make_node("ReduceSum", ["moves", "axis2"], ["into"], keepdims=0),
            helper.make_node("Mul", ["into", "e"], ["alpha_raw"]),
            *_normalized("alpha_raw", "alpha_next", "a"),
            helper.make_node("Identity", ["score_next"], ["score_out"]),
            helper.make_node("Identity", ["alpha_next"], ["alpha_out"]),
        ],
        "forward_step",
        [
            _value("score", _F, ["B", "n"]),
            _value("alpha", _F, ["B", "k"]),
            _value("em", _F, ["B", "n"]),
            _value("e", _F, ["B", "k"]),
        ],
        [
            _value("score_next", _F, ["B", "n"]),
            _value("alpha_next", _F, ["B", "k"]),
            _value("back", _I, ["B", "n"]),
            _value("score_out", _F, ["B", "n"]),
            _value("alpha_out", _F, ["B", "k"]),
        ],
    )


def backward() -> onnx.ModelProto:
    """Inputs: current (B,) each sentence's last label; beta0 (B, k) at the last position;
    back (B, S, n) the back-pointers into each position after the first (a pointer to itself
    past a sentence's end); E (B, S, k) the exponentiated emissions of the same positions;
    reset (B, S, 1) whether the position before each is at or past its sentence's last word;
    M the exponentiated transitions (k, k), ends their end weights (k,). Read from the last
    position back; outputs per position before it (B, S): label; (B, S, k): beta."""
    scan = helper.make_node(
        "Scan",
        ["current", "beta0", "back", "E", "reset"],
        ["label_first", "beta_first", "labels", "beta"],
        body=_backward_step(),
        num_scan_inputs=3,
        scan_input_axes=[1, 1, 1],
        scan_input_directions=[1, 1, 1],
        scan_output_axes=[1, 1],
        scan_output_directions=[1, 1],
    )
    graph = helper.make_graph(
        [_axes("axis1", 1), _axes("axis2", 2), scan],
        "crf_backward",
        [
            _value("current", _I, ["B"]),
            _value("beta0", _F, ["B", "k"]),
            _value("back", _I, ["B", "S", "n"]),
            _value("E", _F, ["B", "S", "k"]),
            _value("reset", _B, ["B", "S", 1]),
            _value("M", _F, ["k", "k"]),
            _value("ends", _F, ["k"]),
        ],
        [_value("labels", _I, ["B", "S"]), _value("beta", _F, ["B", "S", "k"])],
    )
    return _model(graph)


def _backward_step() -> onnx.GraphProto:
    """One position back: the label before, by its back-pointer, and beta rescaled to sum 1,
    or the end weights at a sentence's last word."""
    return helper.make_graph(
        [
            helper.make_node("Unsqueeze", ["label", "axis1"], ["label2"]),
            helper.make_node("GatherElements", ["back_next", "label2"], ["prev2"], axis=1),
            helper.make_node("Squeeze", ["prev2", "axis1"], ["prev"]),
            helper.make_node("Mul", ["e_next", "beta"], ["weighted"]),
            helper.make_node("Unsqueeze", ["weighted", "axis1"], ["weighted3"]),
            helper.make_node("Mul", ["weighted3", "M"], ["moves"]),  # (B, from, to)
            helper.make_node("ReduceSum", ["moves", "axis2"], ["out_of"], keepdims=0),
            *_normalized("out_of", "beta_raw", "b"),
            helper.make_node("Where", ["reset_here", "ends", "beta_raw"], ["beta_prev"]),
            helper.make_node("Identity", ["prev"], ["label_out"]),
            helper.make_node("Identity", ["beta_prev"], ["beta_out"]),
        ],
        "backward_step",
        [
            _value("label", _I, ["B"]),
            _value("beta", _F, ["B", "k"]),
            _value("back_next", _I, ["B", "n"]),
            _value("e_next", _F, ["B", "k"]),
            _value("reset_here", _B, ["B", 1]),
        ],
        [
            _value("prev", _I, ["B"]),
            _value("beta_prev", _F, ["B", "k"]),
            _value("label_out", _I, ["B"]),
            _value("beta_out", _F, ["B", "k"]),
        ],
    )


def _model(graph: onnx.GraphProto) -> onnx.ModelProto:
    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="bigru-serve"
    )
    model.ir_version = 8  # what every onnxruntime >= 1.20 reads
    onnx.checker.check_model(model, full_check=True)
    return model


GRAPHS = {"crf_forward.onnx": forward, "crf_backward.onnx": backward}


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    for name, make in GRAPHS.items():
        (OUT / name).write_bytes(make().SerializeToString())
        print(f"wrote {OUT / name}")


if __name__ == "__main__":
    main()
