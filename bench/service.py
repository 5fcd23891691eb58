"""The service over HTTP, and its ceiling: raw ORT on the very batches its batcher forms.

Service: a real `python -m app` (uvicorn) on a loopback port, loaded by `bench.load` in another
process; the server's CPU time and its /metrics (batch sizes, seconds inside ORT) are read
before and after each run.

Ceiling: one more run at the same concurrency against `bench.recorded` (the same app with a
backend that keeps each batch), then `OnnxBackend.run` on exactly those feeds, as many at once
as the service has workers: what the service would do if HTTP, JSON, tokenizing, featurizing
and decoding were free. In process: the service's `Engine` and `Batcher` driven by closed-loop
clients without HTTP, to split the gap.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import pickle
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import numpy as np

from app.backend import OnnxBackend
from app.batcher import Batcher, BatchLimits
from app.config import Settings
from app.engine import Engine, batch_finishers
from app.metrics import Metrics
from bench.engine import Feeds, Rate

ROOT = Path(__file__).resolve().parent.parent
ROUTES = {"tag": "/tag", "embed": "/embed"}
_METRICS = ("batch_size_sum", "batch_size_count", "batch_tokens_sum", "inference_seconds_sum")


@contextmanager
def server(
    model_dir: Path, env: dict[str, str], log_path: Path, module: str = "app", cwd: Path = ROOT
) -> Iterator[tuple[str, int]]:
    """Start `python -m <module>` on a free loopback port; yields (base URL, pid); SIGTERM at
    exit. `module` is the service (`app`) or the same service recording its batches; `cwd` the
    source tree it is imported from (another revision's, for `bench.ab`)."""
    port = _free_port()
    full_env = {
        **os.environ,
        "HOST": "127.0.0.1",
        "PORT": str(port),
        "BIGRU_MODEL_DIR": str(model_dir),
        **env,
    }
    # the log goes to a file: a pipe nobody reads would fill up and stall the server
    with log_path.open("w") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", module], cwd=cwd, env=full_env, stdout=log, stderr=log
        )
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_healthy(base, proc, log_path)
        yield base, proc.pid
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_healthy(base: str, proc: subprocess.Popen[bytes], log_path: Path) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited: {log_path.read_text()[-2000:]}")
        try:
            if httpx.get(f"{base}/health", timeout=2, trust_env=False).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise RuntimeError("server did not become healthy in 120 s")


def scrape(base: str) -> dict[str, float]:
    """The batcher's cumulative counters from /metrics."""
    text = httpx.get(f"{base}/metrics", timeout=10, trust_env=False).text
    out = {}
    for name in _METRICS:
        match = re.search(rf"^bigru_{name} (\S+)$", text, re.M)
        out[name] = float(match.group(1)) if match else 0.0
    return out


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU seconds of a process so far (Linux /proc), None elsewhere."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime, stime


def load_run(
    base: str,
    pid: int,
    task: str,
    clients: int,
    texts: Path,
    warmup: float,
    seconds: float,
    tool: str = "raw",
    per_request: int = 1,
) -> dict[str, Any]:
    """One closed-loop run of `bench.load` against a started server, with server-side facts."""
    before, cpu0 = scrape(base), cpu_seconds(pid)
    cmd = [sys.executable, "-m", "bench.load", "--url", base + ROUTES[task], "--texts", str(texts)]
    cmd += ["--clients", str(clients), "--warmup", str(warmup), "--seconds", str(seconds)]
    cmd += ["--tool", tool, "--per-request", str(per_request)]
    done = subprocess.run(
        cmd, cwd=ROOT, capture_output=True, text=True, timeout=warmup + seconds + 120, check=True
    )
    result: dict[str, Any] = json.loads(done.stdout)
    after, cpu1 = scrape(base), cpu_seconds(pid)
    d = {k: after[k] - before[k] for k in _METRICS}
    runs = max(d["batch_size_count"], 1)
    wall = result["wall_s"]
    result["server"] = {
        "ort_runs": d["batch_size_count"],
        "mean_batch_size": d["batch_size_sum"] / runs,
        "mean_padded_pieces": d["batch_tokens_sum"] / runs,
        "ort_busy": d["inference_seconds_sum"] / wall,  # share of the run's wall time in ORT
        "cpu": (cpu1 - cpu0) / wall if cpu0 is not None and cpu1 is not None else None,
    }
    result["client_cpu"] = result["client_cpu_s"] / wall
    return result


def ceiling(
    base: str,
    pid: int,
    settings: Settings,
    task: str,
    clients: int,
    texts: Path,
    warmup: float,
    seconds: float,
    batches: Path,
    tool: str = "raw",
) -> dict[str, Any]:
    """A load run against `bench.recorded`, then raw `OnnxBackend.run` timed on the batches its
    batcher formed, in a fresh session with the service's providers, threads and workers."""
    httpx.post(f"{base}/bench/batches", timeout=30, trust_env=False)  # drop warm-up batches
    run = load_run(base, pid, task, clients, texts, warmup, seconds, tool)
    httpx.post(f"{base}/bench/batches", timeout=120, trust_env=False)
    runs: list[tuple[Feeds, list[str]]] = pickle.loads(batches.read_bytes())
    backend = OnnxBackend(settings.model_dir, settings.providers, settings.intra_op_threads)
    for feeds, outputs in runs[:2]:  # first-run costs, as the service's warm-up
        backend.run(feeds, outputs)
    rate = _run_side_by_side(backend, runs, settings.workers)
    sizes, counts = np.unique([f["input_ids"].shape[0] for f, _ in runs], return_counts=True)
    return {
        "clients": clients,
        "intra_op_threads": settings.intra_op_threads,
        "workers": settings.workers,
        "batches": len(runs),
        "mean_batch_size": rate.sentences / max(rate.runs, 1),
        "batch_size_histogram": {int(k): int(v) for k, v in zip(sizes, counts, strict=True)},
        "recorded_service_sentences_per_s": run["sentences_per_s"],
        **rate.as_dict(),
    }


async def _in_process(
    settings: Settings, task: str, texts: list[str], clients: int, seconds: float
) -> dict[str, Any]:
    backend = OnnxBackend(settings.model_dir, settings.providers, settings.intra_op_threads)
    limits = BatchLimits.from_settings(settings)
    metrics = Metrics()
    batcher = Batcher(backend, limits, metrics, settings.workers, batch_finishers(backend.spec))
    batcher.start()
    engine = Engine(backend.spec, batcher, settings, backend.providers)
    await engine.warm_up()
    before = _batch_stats(metrics)
    source = itertools.cycle(texts)  # as bench.load: one shared order
    done = 0
    start = time.perf_counter()

    async def client() -> None:
        nonlocal done
        while time.perf_counter() - start < seconds:
            text = next(source)
            await (
                engine.tag_texts([text]) if task == "tag" else engine.embed([text], normalize=True)
            )
            done += 1

    await asyncio.gather(*(client() for _ in range(clients)))
    elapsed = time.perf_counter() - start
    await batcher.stop()
    after = _batch_stats(metrics)
    return {
        "sentences_per_s": done / elapsed,
        "sentences": done,
        "seconds": elapsed,
        "mean_batch_size": (after[0] - before[0]) / max(after[1] - before[1], 1),
    }


def _run_side_by_side(
    backend: OnnxBackend, runs: list[tuple[Feeds, list[str]]], workers: int
) -> Rate:
    """All `runs` on `workers` threads at once, as the service's workers run them; the rate's
    seconds are the wall time."""
    rate = Rate()
    start = time.perf_counter()
    with ThreadPoolExecutor(workers) as pool:
        list(pool.map(lambda run: backend.run(*run), runs))
    for feeds, _ in runs:
        rate.add(feeds, 0.0)
    rate.seconds = time.perf_counter() - start
    return rate


def _batch_stats(metrics: Metrics) -> tuple[float, float]:
    """(sentences, ORT runs) so far, from the batcher's own histogram."""
    get = metrics.registry.get_sample_value
    return get("bigru_batch_size_sum") or 0.0, get("bigru_batch_size_count") or 0.0


def in_process(
    settings: Settings, task: str, texts: list[str], clients: int, seconds: float
) -> dict[str, Any]:
    """The service's Engine and Batcher with closed-loop clients in this process: no HTTP,
    no JSON, no second process; what the service could do with a free front end."""
    return asyncio.run(_in_process(settings, task, texts, clients, seconds))
