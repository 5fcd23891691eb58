"""The model on ONNX Runtime behind the `Backend` protocol: load and check a model directory,
pick providers, run arrays."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Protocol

import numpy as np
import onnxruntime as ort

from app.model.errors import ModelLoadError, RunError
from app.model.spec import (
    BOUNDARY,
    EMBEDDING,
    GATES,
    INPUTS,
    SEGMENTER_FILE,
    ModelSpec,
    outputs_by_task,
)

log = logging.getLogger(__name__)

Outputs = dict[str, np.ndarray]  # output name -> (B, T, n) per piece, or (B, D) pooled
_PROVIDERS = {"cuda": "CUDAExecutionProvider", "cpu": "CPUExecutionProvider"}
_CPU = _PROVIDERS["cpu"]


class Backend(Protocol):
    """What the service runs a model through: its spec, the providers it runs on, and `run`,
    which worker threads may call at once."""

    @property
    def spec(self) -> ModelSpec: ...

    @property
    def providers(self) -> list[str]: ...

    def run(self, feeds: dict[str, np.ndarray], outputs: list[str]) -> Outputs: ...


def gate_feeds(input_names: set[str], outputs: list[str]) -> dict[str, np.ndarray]:
    """The gate inputs the graph has, each true if an output of its task is wanted."""
    wanted = {task for task, names in outputs_by_task(outputs).items() if names}
    return {flag: np.array(task in wanted) for flag, task in GATES.items() if flag in input_names}


def select_providers(requested: list[str], available: list[str]) -> list[str]:
    """ORT provider names for `requested` ("cuda", "cpu"), in order, the ones available only,
    always ending with CPU."""
    chosen: list[str] = []
    for short in requested:
        name = _PROVIDERS[short]
        if name not in available:
            log.warning("%s requested but not available in this onnxruntime; using CPU", name)
        elif name not in chosen:
            chosen.append(name)
    if _CPU in chosen:
        chosen.remove(_CPU)
    return [*chosen, _CPU]


class OnnxBackend:
    """The model's ORT session, and the segmenter's if the model has one; `run` may be called
    from several worker threads at once."""

    def __init__(self, model_dir: Path, providers: list[str], intra_op_threads: int) -> None:
        self.spec = ModelSpec.load(model_dir)
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = intra_op_threads
        opts.inter_op_num_threads = 1
        opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        # ORT's CPU arena stays on (without it /tag lists ran at 0.85x): it keeps the most its
        # runs took, so the engine's warm-up runs the longest sentences before the process's
        # memory is measured for its budget (app.core.admission).
        # errors only: the graph optimizer's notices about names inside the gated branches are
        # not faults, and would print at every start
        opts.log_severity_level = 3
        chosen = select_providers(providers, ort.get_available_providers())
        self.session = _session(model_dir / "model.onnx", opts, chosen)
        self.segmenter = None
        if self.spec.segmenter:
            self.segmenter = _session(model_dir / SEGMENTER_FILE, opts, chosen)
            if [o.name for o in self.segmenter.get_outputs()] != [BOUNDARY]:
                raise ModelLoadError(f"{model_dir}/{SEGMENTER_FILE}: its output is not {BOUNDARY}")
        self._check_graph()
        self._inputs = {i.name for i in self.session.get_inputs()}
        log.info("loaded %s %s on %s", self.spec.name, self.spec.version, self.providers)

    @property
    def providers(self) -> list[str]:
        return list(self.session.get_providers())

    def _check_graph(self) -> None:
        inputs = {i.name for i in self.session.get_inputs()}
        outputs = {o.name: o.shape for o in self.session.get_outputs()}
        missing = [n for n in INPUTS if n not in inputs]
        missing += [n for n in self.spec.outputs if n not in outputs]
        if missing:
            raise ModelLoadError(f"model.onnx lacks {missing}")
        want = {f"{h.name}_logits": len(h.labels) for h in self.spec.heads}
        if self.spec.embedding_dim is not None:
            want[EMBEDDING] = self.spec.embedding_dim
        for name, size in want.items():
            got = outputs[name][-1]
            if isinstance(got, int) and got != size:  # symbolic dims are not checked
                raise ModelLoadError(f"model.onnx {name} has {got} columns, model.json says {size}")

    def run(self, feeds: dict[str, np.ndarray], outputs: list[str]) -> Outputs:
        """Run the graph and return `outputs`. ORT executes every node whatever outputs are
        asked for, so a gated graph's encoders are switched on only for the outputs wanted."""
        try:
            if outputs == [BOUNDARY] and self.segmenter is not None:
                values = self.segmenter.run(outputs, feeds)
            else:
                values = self.session.run(outputs, {**feeds, **gate_feeds(self._inputs, outputs)})
        except Exception as e:  # ORT raises its own types; the batcher knows this one
            raise RunError(f"inference failed: {e}") from e
        return dict(zip(outputs, values, strict=True))


def _session(path: Path, opts: ort.SessionOptions, providers: list[str]) -> ort.InferenceSession:
    try:
        return ort.InferenceSession(str(path), opts, providers=providers)
    except Exception as e:  # ORT raises its own Fail/InvalidGraph/... types
        raise ModelLoadError(f"{path}: cannot load: {e}") from e

