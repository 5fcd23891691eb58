"""The service's ceiling: raw ORT on the very batches its batcher forms, and its engine without
HTTP.

One load run at the same concurrency against `bench.recorded` (the same app with a backend that
keeps each batch), then `OnnxBackend.run` on exactly those feeds, as many at once as the
service has workers: what the service would do if HTTP, JSON, tokenizing, featurizing and
decoding were free. In process: the service's `Engine` and `Batcher` driven by closed-loop
clients without HTTP, to split the gap.
"""

from __future__ import annotations

import asyncio
import itertools
import pickle
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import numpy as np

from app.config import Settings
from app.core.batcher import Batcher, BatchLimits
from app.core.engine import Engine, batch_finishers
from app.metrics import Metrics
from app.model.backend import OnnxBackend
from bench.engine import Feeds, Rate
from bench.service import load_run


def measure(
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
    cpu0 = time.process_time()  # this process's threads: only the ORT runs work meanwhile
    rate = _run_side_by_side(backend, runs, settings.workers)
    cpu_s = time.process_time() - cpu0
    sizes, counts = np.unique([f["input_ids"].shape[0] for f, _ in runs], return_counts=True)
    return {
        "clients": clients,
        "intra_op_threads": settings.intra_op_threads,
        "workers": settings.workers,
        "batches": len(runs),
        "mean_batch_size": rate.sentences / max(rate.runs, 1),
        "batch_size_histogram": {int(k): int(v) for k, v in zip(sizes, counts, strict=True)},
        "recorded_service_sentences_per_s": run["sentences_per_s"],
        "cpu_s": cpu_s,
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
