"""Prometheus instruments, all named bigru_*, on a registry of their own per app.

A per-app `CollectorRegistry` (not the process-global one) lets a test build several apps.
With several server processes (PROMETHEUS_MULTIPROC_DIR set, see main.py) every process writes
its values to files there, and /metrics adds up those of all processes.
"""

from __future__ import annotations

import os

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)

_SECONDS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
_SIZES = (1, 2, 4, 8, 16, 32, 64, 128, 256)
_TOKENS = (16, 64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384)


class Metrics:
    def __init__(self) -> None:
        r = self.registry = CollectorRegistry()
        self.requests = Counter(
            "bigru_requests",
            "HTTP requests by route, status and model (empty: none chosen yet)",
            ["route", "status", "model"],
            registry=r,
        )
        self.request_seconds = Histogram(
            "bigru_request_seconds",
            "HTTP request latency",
            ["route", "model"],
            buckets=_SECONDS,
            registry=r,
        )
        self.queue_size = Gauge(
            "bigru_queue_size",
            "Sentences waiting for a batch",
            registry=r,
            multiprocess_mode="livesum",  # over the processes alive
        )
        self.batch_size = Histogram(
            "bigru_batch_size", "Sentences per ORT run", ["model"], buckets=_SIZES, registry=r
        )
        self.batch_tokens = Histogram(
            "bigru_batch_tokens",
            "Padded pieces (B*T) per ORT run",
            ["model"],
            buckets=_TOKENS,
            registry=r,
        )
        self.inference_seconds = Histogram(
            "bigru_inference_seconds",
            "Time in one model run: a batch padded, run on ONNX Runtime and decoded",
            ["model"],
            buckets=_SECONDS,
            registry=r,
        )
        self.ort_runs = Counter(
            "bigru_ort_runs", "ORT runs by task and model", ["task", "model"], registry=r
        )

    def render(self) -> tuple[bytes, str]:
        """The exposition text and its content type: this process's metrics, or with several
        processes, the sum over all of them."""
        if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            return generate_latest(self.registry), CONTENT_TYPE_LATEST
        merged = CollectorRegistry()
        multiprocess.MultiProcessCollector(merged)
        return generate_latest(merged), CONTENT_TYPE_LATEST
