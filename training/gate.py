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
    """The nodes of the `outer` gate's branch that only `names` need, moved behind an `If` of
    their own on a new input `flag` (app.model.spec.LAYER_GATES), beside the outer one: a layer
    of the tagger that runs only when its output is wanted. What the layer reads from the
    branch becomes the branch's output too (empty when the outer gate is off, and then the layer
    is off as well). The layer's If sits in the main graph, not inside the branch: ONNX Runtime
    runs a nested branch's products in other kernels, and a sentence would no longer score the
    same alone as in a batch."""
    graph = model.graph
    declared = {o.name: o for o in graph.output}
    types = _value_types(model)
    outer_if = next(n for n in graph.node if n.op_type == "If" and n.input[0] == outer)
    then, other = (next(a.g for a in outer_if.attribute if a.name == b)
                   for b in ("then_branch", "else_branch"))  # fmt: skip
    inner = [f"{name}__then" for name in names]
    own = set(_needed_by(then, inner)) - _needed_by(
        then, [o.name for o in then.output if o.name not in inner]
    )
    moved = [then.node[i] for i in sorted(own)]
    made_inside = {o for i, n in enumerate(then.node) if i not in own for o in n.output}
    crossing = sorted({x for n in moved for x in _reads(n) if x in made_inside})
    kept = [n for i, n in enumerate(then.node) if i not in own]
    del then.node[:]
    then.node.extend(kept)
    _swap_outputs(outer_if, then, other, inner, crossing, types)
    for n in moved:  # read the crossing values as the outer If gives them
        n.input[:] = [f"{x}__layer" if x in crossing else x for x in n.input]
        n.output[:] = [f"{o}__then" if o in inner else o for o in n.output]
    then_outs = [
        helper.make_tensor_value_info(f"{o}__then", TensorProto.FLOAT, None) for o in inner
    ]
    else_outs = [
        helper.make_tensor_value_info(f"{o}__else", TensorProto.FLOAT, None) for o in inner
    ]
    empties = [_empty(f"{o}__else", declared[name]) for o, name in zip(inner, names, strict=True)]
    layer_if = helper.make_node(
        "If", [flag], names, name=f"if_{flag}",
        then_branch=helper.make_graph(moved, f"{flag}_then", [], then_outs),
        else_branch=helper.make_graph(empties, f"{flag}_else", [], else_outs),
    )  # fmt: skip
    graph.node.append(layer_if)
    graph.input.append(helper.make_tensor_value_info(flag, TensorProto.BOOL, []))
    onnx.checker.check_model(model)
    return model


def _value_types(model: onnx.ModelProto) -> dict[str, int]:
    """Every value's element type that shape inference finds, subgraphs included."""
    inferred = onnx.shape_inference.infer_shapes(model)
    types: dict[str, int] = {}

    def walk(g: onnx.GraphProto) -> None:
        for v in [*g.value_info, *g.output, *g.input]:
            types[v.name] = v.type.tensor_type.elem_type
        for n in g.node:
            for a in n.attribute:
                if a.type == onnx.AttributeProto.GRAPH:
                    walk(a.g)

    walk(inferred.graph)
    return types


def _swap_outputs(outer_if, then, other, inner: list[str], crossing: list[str], types) -> None:
    """The outer If gives the crossing values (as `<name>__layer`, once for all layers) instead
    of the layer's outputs; its else branch gives empty ones of the same types."""
    keep = [k for k, o in enumerate(then.output) if o.name not in inner]
    for g in (then, other):
        outs = [g.output[k] for k in keep]
        del g.output[:]
        g.output.extend(outs)
    names = [outer_if.output[k] for k in keep]
    new = [x for x in crossing if f"{x}__layer" not in names]  # another layer's already
    del outer_if.output[:]
    outer_if.output.extend([*names, *(f"{x}__layer" for x in new)])
    for x in new:
        kind = types.get(x) or TensorProto.FLOAT
        then.output.append(helper.make_tensor_value_info(x, kind, None))
        empty = f"{x}__empty"
        value = numpy_helper.from_array(
            np.zeros(0, dtype=helper.tensor_dtype_to_np_dtype(kind)), empty + "_value"
        )
        other.node.append(helper.make_node("Constant", [], [empty], value=value))
        other.output.append(helper.make_tensor_value_info(empty, kind, None))


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
            inner.output[:] = [_unsuffixed(o) for o in inner.output]
            inner.input[:] = [x.removesuffix("__layer") for x in inner.input]
            out.append(inner)
    return out


def _unsuffixed(name: str) -> str:
    while name.endswith("__then"):
        name = name.removesuffix("__then")
    return name
