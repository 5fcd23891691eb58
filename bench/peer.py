"""The peer: all-MiniLM-L6-v2 (the distillation teacher), exported to ONNX and run on ORT.

What a user would deploy instead of our `/embed`. It gets the same sentences, the same CPU and
the best-known setup on it: ORT with every core, batches of 32 sorted by length, tokenized by
its own fast tokenizer (timed apart from the model, as our raw rates exclude featurizing).
The export is cached; its parity with the plain-torch teacher is checked on each export.
"""

from __future__ import annotations

import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from bench.runtimes import measure

OPSET = 17


def export_teacher(path: Path) -> float:
    """Write the teacher to `path` (dynamic batch and time axes); returns max |ORT - torch|."""
    import torch

    from training.teacher import Teacher, tokenizer

    model = Teacher.load()
    path.parent.mkdir(parents=True, exist_ok=True)
    ids, mask = _pad([e.ids for e in tokenizer().encode_batch(["Export me.", "A longer one, ok?"])])
    args = (torch.from_numpy(ids), torch.from_numpy(mask))
    tmp = path.with_suffix(".tmp")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation notices
        torch.onnx.export(
            model,
            args,
            str(tmp),
            input_names=["input_ids", "attention_mask"],
            output_names=["embedding"],
            dynamic_axes={
                "input_ids": {0: "batch", 1: "time"},
                "attention_mask": {0: "batch", 1: "time"},
                "embedding": {0: "batch"},
            },
            opset_version=OPSET,
            dynamo=False,
        )
    check = _pad(
        [e.ids for e in tokenizer().encode_batch(["Hi.", "A much longer sentence, to pad."])]
    )
    with torch.inference_mode():
        ref = model(*(torch.from_numpy(a) for a in check)).numpy()
    feeds = {"input_ids": check[0], "attention_mask": check[1]}
    got = _session(tmp, 1).run(["embedding"], feeds)[0]
    tmp.replace(path)
    return float(np.abs(got - ref).max())


def _pad(encoded: list[list[int]]) -> tuple[np.ndarray, np.ndarray]:
    T = max(len(e) for e in encoded)
    ids = np.zeros((len(encoded), T), dtype=np.int64)  # (B, T)
    mask = np.zeros((len(encoded), T), dtype=np.int64)  # (B, T)
    for i, e in enumerate(encoded):
        ids[i, : len(e)] = e
        mask[i, : len(e)] = 1
    return ids, mask


def _session(path: Path, threads: int) -> Any:
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


def teacher_rate(
    path: Path, texts: list[str], batch_size: int, threads: int, seconds: float
) -> dict[str, Any]:
    """Sentences/s and pieces/s (with [CLS]/[SEP]) of the exported teacher on ORT."""
    from training.teacher import tokenizer

    tok = tokenizer()
    t0 = time.perf_counter()
    encoded = [e.ids for e in tok.encode_batch(texts)]
    tokenize_s = time.perf_counter() - t0
    encoded.sort(key=len)
    batches = []
    for i in range(0, len(encoded), batch_size):
        ids, mask = _pad(encoded[i : i + batch_size])
        # `lengths` is only read by Rate for counting real pieces; the graph never sees it
        batches.append({"input_ids": ids, "attention_mask": mask, "lengths": mask.sum(1)})
    session = _session(path, threads)
    names = ["input_ids", "attention_mask"]
    rate = measure(lambda f: session.run(["embedding"], {k: f[k] for k in names}), batches, seconds)
    return {
        "batch_size": batch_size,
        "threads": threads,
        "tokenize_sentences_per_s": len(texts) / tokenize_s,
        **rate.as_dict(),
    }
