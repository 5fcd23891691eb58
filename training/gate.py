"""Gate the two encoders of an exported graph behind boolean inputs, so a run pays only for
the outputs it asks for.

ONNX Runtime executes every node of a graph whatever outputs are requested, so a run for the
embedding alone would pay for the tagger too, and the reverse. This pass moves the nodes that only
the tag outputs need into the then-branch of an `If` on a new input `want_tags`, and those
only the embedding needs into an `If` on `want_embedding`; nodes both need stay outside. An
else-branch returns an empty tensor. One file and one session still serve both routes, and a
batch that wants both gets both from one run.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from app.model.spec import GATES


def _producers(graph: onnx.GraphProto) -> dict[str, int]:
    return {out: i for i, node in enumerate(graph.node) for out in node.output}


def _needed_by(graph: onnx.GraphProto, outputs: list[str]) -> set[int]:
    """Indices of the nodes that `outputs` depend on."""
    producer = _producers(graph)
    seen: set[int] = set()
    stack = [producer[o] for o in outputs]
    while stack:
        i = stack.pop()
        if i in seen:
            continue
        seen.add(i)
        stack.extend(producer[x] for x in graph.node[i].input if x in producer)
    return seen


def _empty(name: str, declared: onnx.ValueInfoProto) -> onnx.NodeProto:
    """A Constant float tensor with no elements, shaped as declared with 0 for symbolic dims."""
    dims = [
        d.dim_value if d.HasField("dim_value") else 0 for d in declared.type.tensor_type.shape.dim
    ]
    value = numpy_helper.from_array(np.zeros(dims, dtype=np.float32), name + "_value")
    return helper.make_node("Constant", [], [name], value=value)


def gate(model: onnx.ModelProto, gates: dict[str, list[str]]) -> onnx.ModelProto:
    """`gates`: each gate input (app.model.spec.GATES) and the outputs of the encoder it
    switches on."""
    graph = model.graph
    outputs = {o.name: o for o in graph.output}
    needs = {flag: _needed_by(graph, names) for flag, names in gates.items()}
    shared = set.intersection(*needs.values())
    if_nodes = []
    for flag, names in gates.items():
        names = list(names)
        own = sorted(needs[flag] - shared)
        branch_nodes = [graph.node[i] for i in own]
        for node in branch_nodes:  # the branch's results are renamed; the If's are the outputs
            node.output[:] = [f"{o}__then" if o in names else o for o in node.output]
        then_outs, else_outs, empties = [], [], []
        for name in names:
            then_outs.append(
                helper.make_tensor_value_info(f"{name}__then", TensorProto.FLOAT, None)
            )
            else_outs.append(
                helper.make_tensor_value_info(f"{name}__else", TensorProto.FLOAT, None)
            )
            empties.append(_empty(f"{name}__else", outputs[name]))
        if_nodes.append(
            helper.make_node(
                "If",
                [flag],
                names,
                name=f"if_{flag}",
                then_branch=helper.make_graph(branch_nodes, f"{flag}_then", [], then_outs),
                else_branch=helper.make_graph(empties, f"{flag}_else", [], else_outs),
            )
        )
    # Moved into the branches; the rest keep their order, and the Ifs come after all of them.
    moved = set().union(*needs.values()) - shared
    kept = [node for i, node in enumerate(graph.node) if i not in moved]
    del graph.node[:]
    graph.node.extend(kept + if_nodes)
    for flag in gates:
        graph.input.append(helper.make_tensor_value_info(flag, TensorProto.BOOL, []))
    del graph.value_info[:]
    onnx.checker.check_model(model)
    return model


def gate_file(path: Path, gates: dict[str, list[str]]) -> None:
    model = onnx.load(str(path))
    onnx.save(gate(model, gates), str(path))


def ungate(model: onnx.ModelProto) -> onnx.ModelProto:
    """The inverse of `gate`: branch nodes back in the main graph, no gate inputs (for graph
    analysis such as FLOP counting, which walks one flat graph)."""
    model = onnx.ModelProto.FromString(model.SerializeToString())
    graph = model.graph
    nodes = []
    for node in graph.node:
        if node.op_type != "If" or node.input[0] not in GATES:
            nodes.append(node)
            continue
        then = next(a.g for a in node.attribute if a.name == "then_branch")
        for inner in then.node:
            inner.output[:] = [o.removesuffix("__then") for o in inner.output]
            nodes.append(inner)
    del graph.node[:]
    graph.node.extend(nodes)
    kept = [i for i in graph.input if i.name not in GATES]
    del graph.input[:]
    graph.input.extend(kept)
    return model
