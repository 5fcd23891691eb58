"""Gate the two encoders of an exported graph, and optional layers of the tagger, behind boolean
inputs, so a run pays only for the outputs it asks for.

ONNX Runtime executes every node of a graph whatever outputs are requested, so a run for the
embedding alone would pay for the tagger too, and the reverse. This pass moves the nodes that only
the tag outputs need into the then-branch of an `If` on a new input `want_tags`, and those
only the embedding needs into an `If` on `want_embedding`; nodes both need stay outside. An
else-branch returns an empty tensor. One file and one session still serve both routes, and a
batch that wants both gets both from one run. Within the tagger's branch, a layer only some
requests want (the parser) goes behind an `If` of its own the same way.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from app.model.spec import GATES, LAYER_GATES


def _producers(graph: onnx.GraphProto) -> dict[str, int]:
    return {out: i for i, node in enumerate(graph.node) for out in node.output}


def _reads(node: onnx.NodeProto) -> list[str]:
    """What a node reads: its inputs, and what its branches (an If's) read from outside them."""
    names = list(node.input)
    for attr in node.attribute:
        if attr.type == onnx.AttributeProto.GRAPH:
            inside = {o for n in attr.g.node for o in n.output}
            names += [x for n in attr.g.node for x in _reads(n) if x not in inside]
    return names


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
        stack.extend(producer[x] for x in _reads(graph.node[i]) if x in producer)
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


def gate_layer(model: onnx.ModelProto, outer: str, flag: str, names: list[str]) -> onnx.ModelProto:
    """Within the `outer` gate's branch, the nodes only `names` need behind an `If` on a new
    input `flag` (app.model.spec.LAYER_GATES): a layer of the tagger that runs only when its
    output is wanted. The outer gate must be on for it to run."""
    graph = model.graph
    declared = {o.name: o for o in graph.output}
    node = next(n for n in graph.node if n.op_type == "If" and n.input[0] == outer)
    branch = next(a.g for a in node.attribute if a.name == "then_branch")
    inner = [f"{name}__then" for name in names]
    others = [o.name for o in branch.output if o.name not in inner]
    own = sorted(_needed_by(branch, inner) - _needed_by(branch, others))
    moved = [branch.node[i] for i in own]
    for n in moved:
        n.output[:] = [f"{o}__then" if o in inner else o for o in n.output]
    then_outs = [
        helper.make_tensor_value_info(f"{o}__then", TensorProto.FLOAT, None) for o in inner
    ]
    else_outs = [
        helper.make_tensor_value_info(f"{o}__else", TensorProto.FLOAT, None) for o in inner
    ]
    empties = [_empty(f"{o}__else", declared[name]) for o, name in zip(inner, names, strict=True)]
    layer_if = helper.make_node(
        "If",
        [flag],
        inner,
        name=f"if_{flag}",
        then_branch=helper.make_graph(moved, f"{flag}_then", [], then_outs),
        else_branch=helper.make_graph(empties, f"{flag}_else", [], else_outs),
    )
    kept = [n for i, n in enumerate(branch.node) if i not in set(own)]
    del branch.node[:]
    branch.node.extend([*kept, layer_if])
    graph.input.append(helper.make_tensor_value_info(flag, TensorProto.BOOL, []))
    onnx.checker.check_model(model)
    return model


def gate_file(path: Path, gates: dict[str, list[str]], layers: dict[str, list[str]]) -> None:
    """`gates` as `gate` takes them; `layers`: each layer gate and its outputs, gated in turn
    within the `want_tags` gate."""
    model = gate(onnx.load(str(path)), gates)
    for flag, names in layers.items():
        model = gate_layer(model, "want_tags", flag, names)
    onnx.save(model, str(path))


def ungate(model: onnx.ModelProto) -> onnx.ModelProto:
    """The inverse of `gate` and `gate_layer`: branch nodes back in the main graph, no gate
    inputs (for graph analysis such as FLOP counting, which walks one flat graph)."""
    model = onnx.ModelProto.FromString(model.SerializeToString())
    graph = model.graph
    flags = {*GATES, *LAYER_GATES}
    nodes = _flattened(list(graph.node), flags)
    del graph.node[:]
    graph.node.extend(nodes)
    kept = [i for i in graph.input if i.name not in flags]
    del graph.input[:]
    graph.input.extend(kept)
    return model


def _flattened(nodes: list[onnx.NodeProto], flags: set[str]) -> list[onnx.NodeProto]:
    out = []
    for node in nodes:
        if node.op_type != "If" or node.input[0] not in flags:
            out.append(node)
            continue
        then = next(a.g for a in node.attribute if a.name == "then_branch")
        for inner in _flattened(list(then.node), flags):
            inner.output[:] = [o.removesuffix("__then") for o in inner.output]
            out.append(inner)
    return out
