"""The physical limit: FLOPs per piece counted from the ONNX graph (the rules: bench/README.md),
and this CPU's matmul rate."""

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from app.model.spec import outputs_by_task
from bench import ROOT

_BLAS_ENV = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "GOTO_NUM_THREADS")


def count_flops(model_path: Path) -> dict[str, Any]:
    """FLOPs per piece and per sentence for each path, and the counted nodes."""
    import onnx
    from onnx import numpy_helper, shape_inference

    from training.gate import ungate

    graph = shape_inference.infer_shapes(ungate(onnx.load(str(model_path)))).graph
    shapes = {t.name: tuple(t.dims) for t in graph.initializer}
    for node in graph.node:
        if node.op_type == "Constant" and node.attribute and node.attribute[0].name == "value":
            shapes[node.output[0]] = tuple(numpy_helper.to_array(node.attribute[0].t).shape)
    ranks = {v.name: len(v.type.tensor_type.shape.dim)
             for v in [*graph.value_info, *graph.input, *graph.output]
             if v.type.tensor_type.HasField("shape")}  # fmt: skip
    paths = outputs_by_task(o.name for o in graph.output)
    needed = {path: _ancestors(graph, outputs) for path, outputs in paths.items()}
    nodes = []
    for i, node in enumerate(graph.node):
        if counted := _node_flops(node, shapes, ranks):
            unit, flops, dims = counted
            in_paths = [path for path, ids in needed.items() if i in ids]
            nodes.append({"name": node.name, "op": node.op_type, "weights": dims, "per": unit,
                          "flops": flops, "paths": in_paths})  # fmt: skip
    totals = {
        path: {u: sum(n["flops"] for n in nodes if path in n["paths"] and n["per"] == u)
               for u in ("piece", "sentence")}
        for path in paths
    }  # fmt: skip
    return {"per_path": totals, "nodes": nodes}


def _ancestors(graph: Any, outputs: list[str]) -> set[int]:
    """Indices of the nodes the named graph outputs depend on."""
    producer = {out: i for i, node in enumerate(graph.node) for out in node.output}
    seen: set[int] = set()
    stack = [producer[o] for o in outputs if o in producer]
    while stack:
        if (i := stack.pop()) not in seen:
            seen.add(i)
            stack.extend(producer[x] for x in graph.node[i].input if x in producer)
    return seen


def _node_flops(
    node: Any, shapes: dict[str, tuple[int, ...]], ranks: dict[str, int]
) -> tuple[str, int, list[int]] | None:
    """("piece" | "sentence", FLOPs per unit, weight dims) for a counted node, else None."""
    if node.op_type == "GRU":
        D, H3, In = shapes[node.input[1]]  # W (directions, 3H, I)
        return "piece", D * 2 * H3 * (In + H3 // 3), [D, H3, In]
    if node.op_type in ("MatMul", "Gemm") and len(node.input) > 1 and node.input[1] in shapes:
        K, N = (*shapes[node.input[1]], 1)[:2]  # a vector is a matrix of one column
        return "piece" if ranks.get(node.input[0], 3) >= 3 else "sentence", 2 * K * N, [K, N]
    return None


def matmul_peak(n: int = 1024, seconds: float = 2.0) -> dict[str, Any]:
    """Dense float32 n x n matmul rate with numpy as configured (threads as the env says)."""
    rng = np.random.default_rng(0)
    a, b = (rng.standard_normal((n, n), dtype=np.float32) for _ in range(2))
    a @ b  # BLAS thread start-up
    runs, start = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - start) < seconds or runs == 0:
        a @ b
        runs += 1
    return {"n": n, "runs": runs, "seconds": elapsed, "gflops": 2 * n**3 * runs / elapsed / 1e9}


def matmul_peak_single_thread(n: int, seconds: float) -> dict[str, Any]:
    """`matmul_peak` in a child process with every BLAS thread variable set to 1 (the BLAS
    pool size is fixed when numpy loads, so it cannot be changed in this process)."""
    code = "import json, sys; from bench.probes.flops import matmul_peak; "
    code += "print(json.dumps(matmul_peak(int(sys.argv[1]), float(sys.argv[2]))))"
    done = subprocess.run([sys.executable, "-c", code, str(n), str(seconds)], cwd=ROOT,
                          env=os.environ | dict.fromkeys(_BLAS_ENV, "1"), capture_output=True,
                          text=True, check=True)  # fmt: skip
    return json.loads(done.stdout)
