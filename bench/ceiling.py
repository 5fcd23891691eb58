"""The service's ceiling: raw ORT on the very batches its batcher forms.

One load run at the same concurrency against `bench.recorded` (the service with a backend that
keeps each batch), then `OnnxBackend.run` on exactly those feeds, as many at once as the
service has workers: what the service would do if HTTP, JSON, tokenizing, featurizing and
decoding were free.
"""

from __future__ import annotations

import os
import pickle
import signal
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from app.model.backend import OnnxBackend
from bench.runtimes import Feeds, Rate
from bench.service import load_run


def recorded_runs(pid: int, batches: Path) -> list[tuple[Feeds, list[str]]]:
    """The runs `bench.recorded` (process `pid`) kept since it was last asked, now forgotten."""
    batches.unlink(missing_ok=True)
    os.kill(pid, signal.SIGUSR1)
    deadline = time.monotonic() + 60
    while not batches.exists():
        assert time.monotonic() < deadline, "bench.recorded wrote no batches"
        time.sleep(0.05)
    runs: list[tuple[Feeds, list[str]]] = pickle.loads(batches.read_bytes())
    return runs


def measure(
    base: str,
    pid: int,
    model_dir: Path,
    workers: int,
    task: str,
    clients: int,
    texts: list[str],
    warmup: float,
    seconds: float,
    batches: Path,
) -> dict[str, Any]:
    """A load run against `bench.recorded`, then raw `OnnxBackend.run` timed on the batches its
    batcher formed, in a fresh session with the service's settings (CPU, one intra-op thread,
    `workers` runs at once)."""
    recorded_runs(pid, batches)  # drop the warm-up's
    run = load_run(base, pid, task, clients, texts, warmup, seconds)
    runs = recorded_runs(pid, batches)
    backend = OnnxBackend(model_dir, ["cpu"], 1)
    for feeds, outputs in runs[:2]:  # first-run costs, as the service's warm-up
        backend.run(feeds, outputs)
    cpu0 = time.process_time()  # this process's threads: only the ORT runs work meanwhile
    rate = Rate()
    start = time.perf_counter()
    with ThreadPoolExecutor(workers) as pool:  # side by side, as the service's workers
        list(pool.map(lambda r: backend.run(*r), runs))
    for feeds, _ in runs:
        rate.add(feeds, 0.0)
    rate.seconds = time.perf_counter() - start
    sizes, counts = np.unique([f["input_ids"].shape[0] for f, _ in runs], return_counts=True)
    return {
        "clients": clients,
        "intra_op_threads": 1,
        "workers": workers,
        "batches": len(runs),
        "mean_batch_size": rate.sentences / max(rate.runs, 1),
        "batch_size_histogram": {int(k): int(v) for k, v in zip(sizes, counts, strict=True)},
        "recorded_service_sentences_per_s": run["sentences_per_s"],
        "cpu_s": time.process_time() - cpu0,
        **rate.as_dict(),
    }
