"""What one request costs, layer by layer, in server CPU-ms; a projection to 4, 8 and 16 cores;
the 1-client p50 with the default processes against 1 process; idle RSS per process.

`python -m bench.costs` is `python -m app` (one process) with a clock around the synchronous
functions of each layer: each stage's CPU time on its own thread (`time.thread_time_ns`),
exclusive of the stages it calls. SIGUSR1 writes the running totals, with every thread's CPU
from /proc, to the file named by `BIGRU_BENCH_COSTS`; `phase` reads them before and after a
load run. What no clock covers on the event loop (the ASGI edge and handlers, asyncio's tasks
and futures, the log record, metrics) is the loop's CPU less its stages.
"""

from __future__ import annotations

import functools
import itertools
import json
import math
import os
import runpy
import signal
import statistics
import tempfile
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path
from types import FrameType
from typing import Any

from bench import service

_TICK_S = 1 / os.sysconf("SC_CLK_TCK")
_clocks: list[tuple[str, dict[str, int]]] = []  # (thread group, its stage -> ns), per thread
_local = threading.local()
SETTINGS = {"default": {}, "1 process": {"BIGRU_PROCESSES": "1"}}  # the service's own defaults
P50_ROUNDS, P50_S = 3, 3.0
PROJECTED_CORES = (2, 4, 8, 16)
LOADS = (("single", 32, 1), ("lists", 16, 32))  # kind, connections, sentences per request
PROJ_KEYS = ("cpu_bound_req_s", "scaled_req_s")
ROWS = (
    ("http_parse", "HTTP parse (httptools and uvicorn's callbacks)"),
    ("http_write", "HTTP write (the socket send)"),
    ("validation", "validation (pydantic-core)"),
    ("tokenizing", "tokenizing (words, WordPiece, features)"),
    ("queue", "queue (submit, and the worker's batching outside ORT)"),
    ("ort", "ONNX Runtime"),
    ("decode", "decode (the heads' labels and scores, the CRF)"),
    ("assemble", "the answer's tokens, entities and sentences"),
    ("json", "JSON (orjson)"),
    ("loop_rest", "rest of the event loop (ASGI edge, handler, asyncio, log record, metrics)"),
    ("other_threads", "other threads (the log writer)"),
)


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

    from app.core import engine, runs
    from app.core.batcher import Batcher
    from app.core.tagging import Assembler
    from app.http import formats, handlers, native, protocol, spacy_json
    from app.model.backend import OnnxBackend
    from app.model.decode import TagDecoder
    from app.model.featurize import WordPiece

    for cls, name, stage in (
        (protocol.OneWriteProtocol, "data_received", "http_parse"),
        (protocol._OneWriteTransport, "write", "http_write"),
        (engine.Engine, "_pieces", "tokenizing"),
        (WordPiece, "_word_ids", "tokenizing"),  # a cache miss; its hits cost the caller
        (Batcher, "submit", "queue"),
        (OnnxBackend, "run", "ort"),
        (TagDecoder, "decode_batch", "decode"),
        (Assembler, "text", "assemble"),
    ):
        setattr(cls, name, _timed(stage, getattr(cls, name)))
    engine.tokenize = _timed("tokenizing", engine.tokenize)
    runs.featurize = _timed("tokenizing", runs.featurize)
    for model in (native.TagRequest, native.EmbedRequest):
        model.model_validate_json = staticmethod(  # type: ignore[method-assign, assignment]
            _timed("validation", model.model_validate_json)
        )

    class _Orjson:
        dumps = staticmethod(_timed("json", orjson.dumps))

        def __getattr__(self, name: str) -> Any:
            return getattr(orjson, name)

    for module in (handlers, formats, spacy_json):
        module.orjson = _Orjson()  # type: ignore[attr-defined]


def snapshot() -> dict[str, float]:
    """CPU seconds: each `group.stage`, each thread group (loop, worker, other), the process."""
    totals: dict[str, float] = defaultdict(float)
    for group, clock in list(_clocks):
        for stage, ns in list(clock.items()):
            totals[f"{group}.{stage}"] += ns / 1e9
    for thread in threading.enumerate():
        totals[_thread_group(thread)] += _thread_cpu(thread.native_id)
    t = os.times()
    return totals | {"process": t.user + t.system}


def _thread_group(thread: threading.Thread) -> str:
    if thread is threading.main_thread():
        return "loop"
    return "worker" if thread.name.startswith("bigru-ort") else "other"


def _thread_cpu(tid: int | None) -> float:
    fields = service.stat_fields(Path(f"/proc/self/task/{tid}/stat"))
    return 0.0 if fields is None else (int(fields[11]) + int(fields[12])) * _TICK_S


def _write(signum: int = signal.SIGUSR1, frame: FrameType | None = None) -> None:
    out = Path(os.environ["BIGRU_BENCH_COSTS"])
    out.with_suffix(".tmp").write_text(json.dumps(snapshot()))
    out.with_suffix(".tmp").replace(out)


def _request_costs(pid: int, out: Path, run: Callable[[], dict]) -> dict[str, Any]:
    """CPU-ms per request in each row of ROWS over one load run, and the run's figures."""
    before = _snapshot_of(pid, out)
    result = run()
    after = _snapshot_of(pid, out)
    n = max(1.0, result["requests_per_s"] * result["wall_s"])
    delta = {k: (after.get(k, 0.0) - before.get(k, 0.0)) * 1e3 / n for k in after}
    stages = {k: v for k, v in delta.items() if "." in k}
    ms = {name: sum(v for k, v in stages.items() if k.endswith(f".{name}")) for name, _ in ROWS}
    worker_stages = sum(v for k, v in stages.items() if k.startswith("worker."))
    ms["queue"] += delta["worker"] - worker_stages  # the worker's own batching and hand-back
    loop_stages = sum(v for k, v in stages.items() if k.startswith("loop."))
    ms["loop_rest"] = delta["loop"] - loop_stages
    ms["other_threads"] = delta["process"] - delta["loop"] - delta["worker"]
    return {"ms": ms, "total_ms": delta["process"], "requests": n, "run": result}


def _snapshot_of(pid: int, out: Path) -> dict[str, float]:
    """The costs server's totals: `group.stage` and each thread group's and the process's CPU."""
    out.unlink(missing_ok=True)
    os.kill(pid, signal.SIGUSR1)
    deadline = time.monotonic() + 10
    while not out.is_file():
        if time.monotonic() > deadline:
            raise RuntimeError("the costs server wrote no snapshot in 10 s")
        time.sleep(0.01)
    return json.loads(out.read_text())


def phase(results: dict, plan: Any, model_dir: Path, texts: list[str], log: Callable) -> None:
    """Layer costs at 1 process, one sentence per request and lists; then p50 and idle RSS."""
    with tempfile.TemporaryDirectory(prefix="bigru-costs-") as name:
        tmp = Path(name)
        out, section = tmp / "costs.json", {"runs": {}}
        env = plan.env | {"BIGRU_PROCESSES": "1", "BIGRU_BENCH_COSTS": str(out)}
        with service.server(model_dir, env, tmp / "costs.log", "bench.costs") as (base, pid):
            for task, (kind, clients, per) in itertools.product(("tag", "embed"), LOADS):
                run = functools.partial(service.load_run, base, pid, task, clients, texts, 0.0)
                run(plan.warmup_s, per)
                row = _request_costs(pid, out, lambda: run(plan.service_s, per))  # noqa: B023
                section["runs"][f"{task}.{kind}"] = row | {"per_request": per}
                log("costs", f"/{task} {kind}: {row['total_ms']:.3f} CPU-ms per request")
        section |= _p50_and_rss(model_dir, texts, tmp, log)
    section["projection"] = _projection(section, results.get("processes", {}).get("rows", []))
    section["markdown"] = markdown(section)
    results["costs"] = section


def _p50_and_rss(model_dir: Path, texts: list[str], tmp: Path, log: Callable) -> dict:
    """The service's defaults against BIGRU_PROCESSES=1, both up at once, 1 client each in
    alternating rounds (the machine drifts); idle RSS per process before any load."""
    p50: dict[str, list[float]] = defaultdict(list)
    with ExitStack() as stack:
        servers = {
            name: stack.enter_context(service.server(model_dir, env, tmp / f"p50-{i}.log"))
            for i, (name, env) in enumerate(SETTINGS.items())
        }
        rss = {name: [service.rss_mb(p) for p in service.process_tree(pid)]
               for name, (_, pid) in servers.items()}  # fmt: skip
        for round_ in range(-1, P50_ROUNDS):  # round -1 warms each server's paths up
            for name, (base, pid) in servers.items():
                for task in ("tag", "embed"):
                    r = service.load_run(base, pid, task, 1, texts, 0.0, P50_S)
                    if round_ >= 0:
                        p50[f"{name}.{task}"].append(r["latency_ms"]["p50"])
    p50_ms = {k: statistics.median(v) for k, v in p50.items()}
    log("costs", f"1-client p50 (ms): {p50_ms}; idle RSS (MB): {rss}")
    return {"p50_ms": p50_ms, "p50_rounds": dict(p50), "idle_rss_mb": rss}


def _projection(section: dict[str, Any], process_rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Single-sentence req/s on more cores, with as many processes: CPU-bound (cores over the
    measured CPU-ms per request) and scaled from the measured 2 processes, the measured
    1 -> 2 efficiency compounding per doubling. Both are projections, not measurements."""
    rate = {(r["task"], r["processes"]): r["requests_per_s"] for r in process_rows}
    out: dict[str, Any] = {}
    for task in ("tag", "embed"):
        single, lists = section["runs"][f"{task}.single"], section["runs"][f"{task}.lists"]
        r1, r2 = rate.get((task, 1)), rate.get((task, 2))
        eff = r2 / (2 * r1) if r1 and r2 else None
        rows = [
            {
                "cores": cores,
                "cpu_bound_req_s": cores * 1000 / single["total_ms"],
                "scaled_req_s": _scaled(r2, eff, cores),
            }
            for cores in PROJECTED_CORES
        ]
        # with every core busy, single / lists tends to the ratio of their CPU per sentence
        ratio = lists["total_ms"] / lists["per_request"] / single["total_ms"]
        out[task] = {"rows": rows, "efficiency_1_to_2": eff, "single_over_lists_cpu_bound": ratio}
    return out


def markdown(section: dict[str, Any]) -> str:
    runs, keys = section["runs"], ("tag.single", "tag.lists", "embed.single", "embed.lists")
    lines = [
        "## What a request costs, layer by layer (server CPU-ms, 1 process)",
        "",
        "| layer | /tag, 1 sentence per request | /tag lists of 32, per sentence "
        "| /embed, 1 sentence per request | /embed lists of 32, per sentence |",
        "| --- | --- | --- | --- | --- |",
    ]
    per = {k: runs[k]["per_request"] for k in keys}
    for name, label in ROWS:
        cells = " | ".join(f"{runs[k]['ms'][name] / per[k]:.3f}" for k in keys)
        lines.append(f"| {label} | {cells} |")
    totals = " | ".join(f"**{runs[k]['total_ms'] / per[k]:.3f}**" for k in keys)
    lines.append(f"| **total (the process's CPU)** | {totals} |")
    lines += ["", "Projection (not measured) of one-sentence req/s with one process per core:", ""]
    lines += ["| cores | /tag CPU-bound | /tag scaled | /embed CPU-bound | /embed scaled |"]
    lines += ["| --- | --- | --- | --- | --- |"]
    proj = section["projection"]
    for i, cores in enumerate(PROJECTED_CORES):
        cells = [_num(proj[t]["rows"][i][k]) for t in ("tag", "embed") for k in PROJ_KEYS]
        lines.append(f"| {cores} | " + " | ".join(cells) + " |")
    for task in ("tag", "embed"):
        p = proj[task]
        eff = "n/a" if p["efficiency_1_to_2"] is None else f"{p['efficiency_1_to_2']:.2f}"
        lines.append(f"\n/{task}: 1 -> 2 process efficiency {eff}; with every core busy, single "
                     f"/ lists tends to {p['single_over_lists_cpu_bound']:.2f} (their CPU per "
                     "sentence).")  # fmt: skip
    p50, rss = section["p50_ms"], section["idle_rss_mb"]
    for task in ("tag", "embed"):
        d, one = p50[f"default.{task}"], p50[f"1 process.{task}"]
        lines.append(f"\n/{task} 1-client p50: defaults {d:.2f} ms, 1 process {one:.2f} ms "
                     f"({d / one:.2f}x; median of {P50_ROUNDS} alternating rounds).")  # fmt: skip
    for name, sizes in rss.items():
        parent = " (the first is the parent)" if len(sizes) > 1 else ""
        lines.append(f"\nIdle RSS, {name}: {', '.join(f'{mb:.0f} MB' for mb in sizes)}{parent}.")
    return "\n".join(lines) + "\n"


def _scaled(measured_2: float | None, efficiency: float | None, cores: int) -> float | None:
    if measured_2 is None or efficiency is None:
        return None
    return measured_2 * cores / 2 * efficiency ** math.log2(cores / 2)


def _num(value: float | None) -> str:
    return "n/a" if value is None else f"{value:,.0f}"


def main() -> None:
    _install()
    signal.signal(signal.SIGUSR1, _write)
    runpy.run_module("app", run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
