"""The model behind the `Backend` protocol: the tasks the core schedules (tag, embed, segment a
batch of sentences), each padded, run on ONNX Runtime and decoded here, so the core never sees
a graph output. `OnnxBackend` loads and checks a model directory and picks providers."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

import numpy as np
import onnxruntime as ort

from app.model.decode import WordTags
from app.model.errors import ModelLoadError, RunError
from app.model.featurize import Features, pad_batch
from app.model.parse import TreeDecoder
from app.model.spec import (
    BOUNDARY,
    EMBEDDING,
    GATES,
    INPUTS,
    LAYER_GATES,
    PARSE,
    SEGMENTER_FILE,
    ModelSpec,
    head_output,
    layer_outputs,
    outputs_by_task,
)

log = logging.getLogger(__name__)

Outputs = dict[str, np.ndarray]  # output name -> (B, T, n) per piece, or (B, D) pooled
_PROVIDERS = {"cuda": "CUDAExecutionProvider", "cpu": "CPUExecutionProvider"}
_CPU = _PROVIDERS["cpu"]
_Run = Callable[[list[str], dict[str, np.ndarray]], list[np.ndarray]]  # a session's run
_CPU_ARENA = ort.OrtMemoryInfo(
    "Cpu", ort.OrtAllocatorType.ORT_ARENA_ALLOCATOR, 0, ort.OrtMemType.DEFAULT
)
_arena_lock = threading.Lock()
_arena_made = False


class Backend(Protocol):
    """What the service runs a model through: its spec, the providers it runs on, and its
    tasks (those in `spec.tasks`), which worker threads may call at once. Each takes a batch of
    sentences and gives one result per sentence, whatever else is in the batch."""

    @property
    def spec(self) -> ModelSpec: ...

    @property
    def providers(self) -> list[str]: ...

    def tag(self, batch: list[Features]) -> list[WordTags]:
        """Each sentence's words' labels, of the heads any sentence of the batch asks for."""
        ...

    def embed(self, batch: list[Features]) -> list[np.ndarray]:
        """Each sentence's embedding (D,), as the graph gives it (not normalized)."""
        ...

    def segment(self, batch: list[Features]) -> list[np.ndarray]:
        """Each text window's sentence-start logit per piece (T,)."""
        ...


def gate_feeds(
    input_names: set[str], outputs: list[str], layers: dict[str, list[str]] | None = None
) -> dict[str, np.ndarray]:
    """The gate inputs the graph has, each true if an output of its task, or of its layer
    (`layers`: each layer's outputs), is wanted."""
    wanted = {task for task, names in outputs_by_task(outputs).items() if names}
    feeds = {flag: np.array(task in wanted) for flag, task in GATES.items()}
    for flag, layer in LAYER_GATES.items():
        feeds[flag] = np.array(any(o in outputs for o in (layers or {}).get(layer, [])))
    return {flag: value for flag, value in feeds.items() if flag in input_names}


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
        # memory is measured for its budget (app.core.admission). It is one arena for every
        # session of the process, so that a server of several models holds the most one run
        # took, not that much per model.
        _share_one_cpu_arena(opts)
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
        self._decoder = self.spec.tag_decoder()
        self._layers = layer_outputs(self.spec.heads)
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
        want = {head_output(h): len(h.labels) for h in self.spec.heads if h.tree is None}
        for head in self.spec.heads:
            if head.tree is not None:
                want[PARSE] = TreeDecoder(head.tree).width
        if self.spec.embedding_dim is not None:
            want[EMBEDDING] = self.spec.embedding_dim
        for name, size in want.items():
            got = outputs[name][-1]
            if isinstance(got, int) and got != size:  # symbolic dims are not checked
                raise ModelLoadError(f"model.onnx {name} has {got} columns, model.json says {size}")

    def tag(self, batch: list[Features]) -> list[WordTags]:
        out = self.run(pad_batch(batch), self._tag_outputs(batch))
        return self._decoder.decode_batch(out, batch)

    def _tag_outputs(self, batch: list[Features]) -> list[str]:
        """Every head's output, except an optional layer's when no sentence of the batch asks
        for a head that reads it: a layer behind a gate runs only then."""
        heads = self.spec.heads
        if all(f.heads is not None for f in batch):
            wanted = set().union(*(f.heads for f in batch if f.heads is not None))
            layers = {h.layer for h in heads if h.name in wanted}
            heads = [h for h in heads if h.layer is None or h.layer in layers]
        return list(dict.fromkeys(head_output(h) for h in heads))

    def embed(self, batch: list[Features]) -> list[np.ndarray]:
        return list(self.run(pad_batch(batch), [EMBEDDING])[EMBEDDING])

    def segment(self, batch: list[Features]) -> list[np.ndarray]:
        if self.segmenter is None:
            raise RunError(f"model {self.spec.name} has no segmenter")
        feeds = pad_batch(batch)
        (logits,) = _guarded(self.segmenter.run, [BOUNDARY], feeds)
        return [logits[i, : f.length] for i, f in enumerate(batch)]

    def run(self, feeds: dict[str, np.ndarray], outputs: list[str]) -> Outputs:
        """The model graph's `outputs` for padded `feeds` (the tasks, the evaluation and the
        benchmarks run it). ORT executes every node whatever outputs are asked for, so a gated
        graph's encoders are switched on only for the outputs wanted."""
        gates = gate_feeds(self._inputs, outputs, self._layers)
        values = _guarded(self.session.run, outputs, {**feeds, **gates})
        return dict(zip(outputs, values, strict=True))


def _guarded(run: _Run, outputs: list[str], feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
    try:
        return run(outputs, feeds)
    except Exception as e:  # ORT raises its own types; the batcher knows this one
        raise RunError(f"inference failed: {e}") from e


def _share_one_cpu_arena(opts: ort.SessionOptions) -> None:
    """Sessions made with `opts` take their CPU memory from the process's one arena, made the
    first time (ORT's environment allocators)."""
    global _arena_made
    with _arena_lock:
        if not _arena_made:
            ort.create_and_register_allocator(_CPU_ARENA, None)
            _arena_made = True
    opts.add_session_config_entry("session.use_env_allocators", "1")


def _session(path: Path, opts: ort.SessionOptions, providers: list[str]) -> ort.InferenceSession:
    try:
        return ort.InferenceSession(str(path), opts, providers=providers)
    except Exception as e:  # ORT raises its own Fail/InvalidGraph/... types
        raise ModelLoadError(f"{path}: cannot load: {e}") from e
