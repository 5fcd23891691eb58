"""The physical limit: FLOPs per piece counted from the ONNX graph, and this CPU's matmul rate.

Counting (dense multiply-adds x 2; element-wise work is left out, see below):
- ONNX GRU, per direction, per time step, input size I, hidden size H: the input projection
  x_t W^T is 3H x I multiply-adds and the recurrent one h_{t-1} R^T is 3H x H, so
  `2 * 3H * (I + H)` FLOPs; a bidirectional layer counts both directions. Each real piece is one
  step. Gates, biases and the state update add about 10H more (under 1% at H=256), not counted.
- MatMul / Gemm with a weight (an initializer or Constant) of K x N: `2 * K * N` per row of the
  activation. A rank-3+ activation (B, T, C) has a row per piece (the tag heads); a rank-2 one
  (B, C) a row per sentence (the pooled embedding's projection).
- Embedding lookups (Gather), pooling, softmax: no multiply-adds, not counted.
A path ("tag": upos_logits + ner_logits; "embed": embedding) counts the nodes its outputs
depend on, so the shared parts are in both and neither counts the other encoder.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from app.model.spec import outputs_by_task

_BLAS_ENV = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "GOTO_NUM_THREADS")


def count_flops(model_path: Path) -> dict[str, Any]:
    """FLOPs per piece and per sentence for each path, and the counted nodes."""
    import onnx
    from onnx import numpy_helper, shape_inference

    from training.gate import ungate

    model = shape_inference.infer_shapes(ungate(onnx.load(str(model_path))))
    graph = model.graph
    shapes = {t.name: tuple(t.dims) for t in graph.initializer}
    for node in graph.node:
        if node.op_type == "Constant" and node.attribute and node.attribute[0].name == "value":
            shapes[node.output[0]] = tuple(numpy_helper.to_array(node.attribute[0].t).shape)
    ranks = {
        v.name: len(v.type.tensor_type.shape.dim)
        for v in [*graph.value_info, *graph.input, *graph.output]
        if v.type.tensor_type.HasField("shape")
    }
    inputs = [list(node.input) for node in graph.node]
    producer = {out: i for i, node in enumerate(graph.node) for out in node.output}
    paths = outputs_by_task(o.name for o in graph.output)
    needed = {path: _ancestors(outputs, inputs, producer) for path, outputs in paths.items()}

    nodes = []
    for i, node in enumerate(graph.node):
        counted = _node_flops(node, shapes, ranks)
        if counted is None:
            continue
        unit, flops, dims = counted
        nodes.append(
            {
                "name": node.name,
                "op": node.op_type,
                "weights": dims,
                "per": unit,
                "flops": flops,
                "paths": [path for path, ids in needed.items() if i in ids],
            }
        )
    totals = {
        path: {
            unit: sum(n["flops"] for n in nodes if path in n["paths"] and n["per"] == unit)
            for unit in ("piece", "sentence")
        }
        for path in paths
    }
    return {"per_path": totals, "nodes": nodes}


def _ancestors(outputs: list[str], inputs: list[list[str]], producer: dict[str, int]) -> set[int]:
    """Indices of the nodes the named graph outputs depend on."""
    seen: set[int] = set()
    stack = [producer[o] for o in outputs if o in producer]
    while stack:
        i = stack.pop()
        if i not in seen:
            seen.add(i)
            stack.extend(producer[x] for x in inputs[i] if x in producer)
    return seen


def _node_flops(
    node: Any, shapes: dict[str, tuple[int, ...]], ranks: dict[str, int]
) -> tuple[str, int, list[int]] | None:
    """("piece" | "sentence", FLOPs per unit, weight dims) for a counted node, else None."""
    if node.op_type == "GRU":
        D, H3, In = shapes[node.input[1]]  # W (directions, 3H, I)
        H = H3 // 3
        return "piece", D * 2 * H3 * (In + H), [D, H3, In]
    if node.op_type in ("MatMul", "Gemm") and len(node.input) > 1 and node.input[1] in shapes:
        K, N = shapes[node.input[1]][-2:]
        unit = "piece" if ranks.get(node.input[0], 3) >= 3 else "sentence"
        return unit, 2 * K * N, [K, N]
    return None


def matmul_peak(n: int = 1024, seconds: float = 2.0) -> dict[str, Any]:
    """Dense float32 n x n matmul rate with numpy as configured (threads as the env says)."""
    rng = np.random.default_rng(0)
    a = rng.standard_normal((n, n), dtype=np.float32)
    b = rng.standard_normal((n, n), dtype=np.float32)
    a @ b  # BLAS thread start-up
    runs, start = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - start) < seconds or runs == 0:
        a @ b
        runs += 1
    return {"n": n, "runs": runs, "seconds": elapsed, "gflops": 2 * n**3 * runs / elapsed / 1e9}


def matmul_peak_single_thread(n: int, seconds: float) -> dict[str, Any]:
    """`matmul_peak` in a child process with every BLAS thread variable set to 1 (the BLAS
    pool size is fixed when numpy loads, so it cannot be changed in this process)."""
    env = {**os.environ, **dict.fromkeys(_BLAS_ENV, "1")}
    code = f"import json; from bench.probes.flops import matmul_peak; print(json.dumps(matmul_peak({n}, {seconds})))"  # noqa: E501
    root = Path(__file__).resolve().parents[2]
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, cwd=root, capture_output=True, text=True, check=True
    )
    return json.loads(done.stdout)


def blas_info() -> dict[str, Any]:
    """The BLAS numpy uses and its thread settings: threadpoolctl's view if installed, else
    numpy's build config, plus the thread environment variables as found."""
    info: dict[str, Any] = {"env": {k: os.environ.get(k) for k in _BLAS_ENV}}
    try:
        from threadpoolctl import threadpool_info

        info["threadpoolctl"] = threadpool_info()
    except ImportError:
        config = np.show_config(mode="dicts") or {}
        info["numpy_config"] = config.get("Build Dependencies", {})
    return info
