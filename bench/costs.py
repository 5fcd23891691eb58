"""The service instrumented (`python -m bench.costs`): its CPU per request layer by layer, with
the 1-client p50 and idle RSS, and its ceiling, raw ORT on its own batches (bench/README.md)."""

import os

# as `python -m app` does (app/__main__.py), before numpy loads: the service as it runs
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import functools
import itertools
import json
import pickle
import runpy
import signal
import statistics
import sys
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from pathlib import Path
from types import FrameType
from typing import Any

from app.model.backend import OnnxBackend, Outputs
from bench import service
from bench.report import log
from bench.runtimes import Feeds, Rate
from bench.targets import CLIENTS, TASKS

_clocks: list[tuple[str, dict[str, int]]] = []  # (thread group, its stage -> ns), per thread
_local = threading.local()
_runs: list[tuple[Feeds, list[str]]] = []  # the ORT runs kept, (feeds, outputs)
_run = OnnxBackend.run
SETTINGS = {"default": {}, "1 process": {"BIGRU_PROCESSES": "1"}}  # the service's own defaults
LOADS = (("single", 32, 1), ("lists", 16, 32))  # kind, connections, sentences per request


def _timed(stage: str, fn: Callable[..., Any]) -> Callable[..., Any]:
    """`fn`, its CPU time on this thread counted to `stage`, less that of clocked callees."""

    @functools.wraps(fn)
    def clocked(*args: Any, **kwargs: Any) -> Any:
        if not hasattr(_local, "stack"):
            _local.stack, _local.totals = [], defaultdict(int)
            _clocks.append((_thread_group(threading.current_thread()), _local.totals))
        stack, totals, start = _local.stack, _local.totals, time.thread_time_ns()
        if stack:  # the caller's stage pauses
            totals[stack[-1][0]] += start - stack[-1][1]
        stack.append([stage, start])
        try:
            return fn(*args, **kwargs)
        finally:
            end = time.thread_time_ns()
            own, resumed = stack.pop()
            totals[own] += end - resumed
            if stack:  # the caller's stage resumes
                stack[-1][1] = end

    return clocked


def _install() -> None:
    """The clocks, on the functions each layer runs per request."""
    import orjson

    import app.main  # noqa: F401  (every module of the service: each one's orjson is clocked)
    from app.core import engine, runs
    from app.core.answers import Assembler
    from app.core.batcher import Batcher
    from app.http import native, protocol
    from app.model.decode import TagDecoder
    from app.model.featurize import WordPiece

    for owner, name, stage in (
        (protocol.OneWriteProtocol, "data_received", "http_parse"),
        (protocol._OneWriteTransport, "write", "http_write"),
        (engine.Engine, "_pieces", "tokenizing"),
        (engine, "tokenize", "tokenizing"),
        (runs, "featurize", "tokenizing"),
        (WordPiece, "_word_ids", "tokenizing"),  # a cache miss; its hits cost the caller
        (Batcher, "submit", "queue"),
        (OnnxBackend, "run", "ort"),
        (TagDecoder, "decode_batch", "decode"),
        (Assembler, "text", "assemble"),
    ):
        setattr(owner, name, _timed(stage, getattr(owner, name)))
    for model in (native.TagRequest, native.EmbedRequest):
        model.model_validate_json = staticmethod(  # type: ignore[method-assign, assignment]
            _timed("validation", model.model_validate_json)
        )

    class _Orjson:
        dumps = staticmethod(_timed("json", orjson.dumps))

        def __getattr__(self, name: str) -> Any:
            return getattr(orjson, name)

    for module in list(sys.modules.values()):
        if module.__name__.startswith("app.") and getattr(module, "orjson", None) is orjson:
            module.orjson = _Orjson()  # type: ignore[attr-defined]


def snapshot() -> dict[str, float]:
    """CPU seconds: each `group.stage`, each thread group (loop, worker, other), the process."""
    totals: dict[str, float] = defaultdict(float)
    for group, clock in list(_clocks):
        for stage, ns in list(clock.items()):
            totals[f"{group}.{stage}"] += ns / 1e9
    for thread in threading.enumerate():
        totals[_thread_group(thread)] += service.thread_cpu_seconds(thread.native_id)
    t = os.times()
    return totals | {"process": t.user + t.system}


def _thread_group(thread: threading.Thread) -> str:
    if thread is threading.main_thread():
        return "loop"
    return "worker" if thread.name.startswith("bigru-ort") else "other"


def _recording_run(self: OnnxBackend, feeds: Feeds, outputs: list[str]) -> Outputs:
    _runs.append((feeds, outputs))
    return _run(self, feeds, outputs)


def _write(signum: int = signal.SIGUSR1, frame: FrameType | None = None) -> None:
    """The instrument's figures to the file its variable names; runs kept meanwhile stay."""
    if batches := os.environ.get("BIGRU_BENCH_BATCHES"):
        taken = _runs[:]
        del _runs[: len(taken)]
        service.answer(Path(batches), pickle.dumps(taken))
    else:
        service.answer(Path(os.environ["BIGRU_BENCH_COSTS"]), json.dumps(snapshot()).encode())


def _request_costs(pid: int, out: Path, run: Callable[[], dict]) -> dict[str, Any]:
    """CPU-ms per request of each stage (summed over thread groups) over one load run, the
    worker's own batching counted to the queue, the rest of the loop and the other threads by
    difference; and the run's figures."""
    before = json.loads(service.ask(pid, out, 10))
    result = run()
    after = json.loads(service.ask(pid, out, 10))
    n = max(1.0, result["requests_per_s"] * result["wall_s"])
    delta = {k: (after[k] - before.get(k, 0.0)) * 1e3 / n for k in after}
    ms: dict[str, float] = defaultdict(float)
    for key, value in delta.items():
        if "." in key:
            ms[key.split(".", 1)[1]] += value
    for group, rest in (("worker", "queue"), ("loop", "loop_rest")):
        ms[rest] += delta[group] - sum(v for k, v in delta.items() if k.startswith(f"{group}."))
    ms["other_threads"] = delta["process"] - delta["loop"] - delta["worker"]
    return {"ms": dict(ms), "total_ms": delta["process"], "requests": n, "run": result}


def phase(results: dict, plan: Any, s: Any) -> None:
    """Layer costs at 1 process, one sentence per request and lists; then the 1-client p50 of
    the service's defaults against BIGRU_PROCESSES=1 in alternating rounds, and idle RSS."""
    out, section, p50 = s.tmp / "costs.json", {"runs": {}}, defaultdict(list)
    env = plan.env | {"BIGRU_PROCESSES": "1", "BIGRU_BENCH_COSTS": str(out)}
    with service.server(s.model_dir, env, s.tmp / "costs.log", "bench.costs") as srv:
        for task, (kind, clients, per) in itertools.product(TASKS, LOADS):
            srv.load(task, clients, s.dev, (0.0, plan.warmup_s), per)
            run = functools.partial(srv.load, task, clients, s.dev, (0.0, plan.service_s), per)
            row = _request_costs(srv.pid, out, run)
            section["runs"][f"{task}.{kind}"] = row | {"per_request": per}
            log("costs", f"/{task} {kind}: {row['total_ms']:.3f} CPU-ms per request")
    with ExitStack() as stack:
        servers = {name: stack.enter_context(service.server(s.model_dir, env, s.tmp / f"{i}.log"))
                   for i, (name, env) in enumerate(SETTINGS.items())}  # fmt: skip
        rss = {name: [service.rss_mb(p) for p in service.process_tree(srv.pid)]
               for name, srv in servers.items()}  # fmt: skip
        for round_ in range(-1, plan.p50_rounds):  # round -1 warms each server's paths up
            for (name, srv), task in itertools.product(servers.items(), TASKS):
                r = srv.load(task, 1, s.dev, (0.0, plan.p50_s))
                if round_ >= 0:
                    p50[f"{name}.{task}"].append(r["latency_ms"]["p50"])
    p50_ms = {k: statistics.median(v) for k, v in p50.items()}
    log("costs", f"1-client p50 (ms): {p50_ms}; idle RSS (MB): {rss}")
    results["costs"] = section | {"p50_ms": p50_ms, "p50_rounds": dict(p50), "idle_rss_mb": rss}


def ceiling(results: dict, plan: Any, s: Any) -> None:
    """Per route, a load run at CLIENTS against the service keeping its batches (one process:
    the one that records them), then raw ORT on those very batches."""
    out = s.tmp / "batches.pickle"
    env = plan.env | {"BIGRU_BENCH_BATCHES": str(out), "BIGRU_PROCESSES": "1"}
    with service.server(s.model_dir, env, s.tmp / "ceiling.log", "bench.costs") as srv:
        for task in TASKS:
            service.ask(srv.pid, out)  # drop the warm-up's
            sps = srv.load(task, CLIENTS, s.dev, plan.window)["sentences_per_s"]
            kept = pickle.loads(service.ask(srv.pid, out))
            c = _replay(OnnxBackend(s.model_dir, ["cpu"], 1), kept, plan.workers)
            results.setdefault("ceiling", {})[task] = c | {"recorded_service_sentences_per_s": sps}
            log("ceiling", f"/{task:5} {sps:,.0f} sent/s over HTTP; raw ORT on its "
                f"{len(kept)} batches: {c['sentences_per_s']:,.0f} sent/s")  # fmt: skip


def _replay(backend: OnnxBackend, kept: list[tuple[Feeds, list[str]]], workers: int) -> dict:
    """`kept` runs on `backend`, `workers` at once; their rate and the CPU they took."""
    for feeds, outputs in kept[:2]:  # first-run costs, as the service's warm-up
        backend.run(feeds, outputs)
    cpu0, rate, start = time.process_time(), Rate(), time.perf_counter()
    with ThreadPoolExecutor(workers) as pool:  # only the ORT runs work in this process meanwhile
        list(pool.map(lambda run: backend.run(*run), kept))
    rate.seconds = time.perf_counter() - start
    for feeds, _ in kept:
        rate.add(feeds, 0.0)
    return {"clients": CLIENTS, "workers": workers, "batches": len(kept),
            "mean_batch_size": rate.sentences / max(rate.runs, 1),
            "cpu_s": time.process_time() - cpu0, **rate.as_dict()}  # fmt: skip


def main() -> None:
    if "BIGRU_BENCH_BATCHES" in os.environ:
        OnnxBackend.run = _recording_run  # type: ignore[method-assign]
    else:
        _install()
    signal.signal(signal.SIGUSR1, _write)
    runpy.run_module("app", run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
