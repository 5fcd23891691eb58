"""The app: `create_app(settings)` wires the layers (each model's backend, the batcher they
share and an engine per model in core, the HTTP edge, dispatcher and FastAPI app); `run()`
serves it with uvicorn (`python -m app`)."""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import shutil
import signal
import sys
import tempfile
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager, suppress
from types import FrameType
from typing import Any

import uvicorn
from fastapi import FastAPI
from pydantic import ValidationError
from uvicorn.config import STARTUP_FAILURE

from app.config import Settings
from app.core.admission import MemoryBudget, MiB, Sizing
from app.core.batcher import Batcher
from app.core.engine import Engine
from app.core.models import Models
from app.core.off_loop import OffLoop
from app.core.queue import BatchLimits
from app.http import edge
from app.http.api import documented_app
from app.http.protocol import OneWriteProtocol
from app.logs import configure_logging
from app.memory import give_back_memory, memory_limit, rss_bytes
from app.metrics import Metrics
from app.model.backend import Backend
from app.model.errors import ModelLoadError
from app.model.repository import Repository, default_among
from app.processes import supervisor

log = logging.getLogger(__name__)


def create_app(
    settings: Settings | None = None, backends: Mapping[str, Backend] | None = None
) -> edge.Edge:
    """The service; its models are loaded at startup from the settings' model folders, unless
    `backends` are given (by name; the default picked among them as among folders)."""
    settings = settings or Settings()
    metrics = Metrics()
    memory = MemoryBudget(settings.admission_timeout)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        loaded, default = await asyncio.to_thread(_load, settings, backends)
        batcher = Batcher(loaded, BatchLimits.from_settings(settings), metrics, settings.workers)
        batcher.start()
        off_loop = OffLoop()
        models = Models(
            {
                name: Engine(name, b.spec, batcher.for_model(name), settings, b.providers, off_loop)
                for name, b in loaded.items()
            },
            default,
        )
        try:
            # at once: the arena they share then holds what their runs side by side take
            await asyncio.gather(*(engine.warm_up() for engine in models.engines.values()))
            app.state.memory_sizing = _size(memory, settings)
            app.state.models = models  # from here /health is 200
            log.info("ready: models %s, %s by default", models.names, default)
            yield
        finally:
            app.state.models = None
            await batcher.stop()  # uvicorn has already let in-flight requests finish
            off_loop.close()

    app = documented_app(settings, metrics, lifespan)
    app.state.memory_budget = memory
    return edge.build(app, settings, metrics, memory)


def _load(
    settings: Settings, backends: Mapping[str, Backend] | None
) -> tuple[Mapping[str, Backend], str]:
    """The models by name, and the default's name."""
    if backends is not None:
        return backends, default_among(list(backends), settings.default_model)
    repository = _repository(settings)
    return repository.load(settings.providers, settings.intra_op_threads), repository.default


def _repository(settings: Settings) -> Repository:
    return Repository.find(settings.model_dir, settings.models_dir, settings.default_model)


def _size(memory: MemoryBudget, settings: Settings) -> Sizing:
    """The process's memory budget, from the limit and the most it has held: warmed up, its
    batches of the largest size have run (what it frees after them comes back with the next)."""
    gc.collect()
    limit = settings.memory_limit_mb
    supervisor = rss_bytes(os.getppid()) // settings.processes if settings.processes > 1 else 0
    sizing = Sizing.compute(
        memory_limit() if limit is None else limit * MiB,
        settings.processes,
        settings.memory_target,
        rss_bytes(field="VmHWM"),
        supervisor,
    )
    memory.budget = sizing.budget
    log.info(
        "memory for requests: %s MiB (limit %s MiB x %.2f / %d processes, less %d MiB warmed "
        "up and %d MiB of the supervisor)",
        "unbounded" if sizing.budget is None else sizing.budget // MiB,
        "unknown" if sizing.limit is None else sizing.limit // MiB,
        sizing.target,
        sizing.processes,
        sizing.idle // MiB,
        sizing.supervisor // MiB,
    )
    return sizing


class _Config(uvicorn.Config):
    """uvicorn's config, except that a process stopped by SIGTERM exits 0, its logs written.

    uvicorn shuts down gracefully on SIGTERM, then restores the handler it found and raises the
    signal again: with the default handler the process would die by the signal (status 143),
    and the lines still queued for the log writer thread (app.logs) with it. SIGTERM is how
    compose and Kubernetes stop a healthy replica, so that stop exits 0 here. Every process,
    each of the supervisor's children too, configures logging here before it serves, so the
    handler uvicorn finds is this one. Ctrl-C (SIGINT) is left as it was.
    """

    def configure_logging(self) -> None:
        super().configure_logging()
        signal.signal(signal.SIGTERM, _exit_stopped)


def _exit_stopped(sig: int, frame: FrameType | None) -> None:
    sys.exit(0)  # SystemExit unwinds the server's run, so the exit hooks write the logs


def app_from_env() -> edge.Edge:
    """The app of one server process of several (`BIGRU_PROCESSES`): uvicorn calls this in
    each process it starts, which reads the same environment and loads its own model."""
    settings = Settings()
    configure_logging(settings.log_json, settings.log_level)
    return create_app(settings)


def run() -> None:
    """Serve on settings.host:settings.port; a bad setting or model exits 1 with one line."""
    try:
        settings = Settings()
    except ValidationError as e:
        sys.exit(f"bigru-serve: bad settings: {e}".replace("\n", " "))
    configure_logging(settings.log_json, settings.log_level)
    try:
        backends = _repository(settings).load(settings.providers, settings.intra_op_threads)
    except ModelLoadError as e:
        sys.exit(f"bigru-serve: cannot load the model: {e}".replace("\n", " "))
    options: dict[str, Any] = {
        "host": settings.host,
        "port": settings.port,
        "lifespan": "on",
        "http": OneWriteProtocol,  # httptools, a response's header and body in one write
        "log_config": None,  # configure_logging's handler already serves uvicorn's loggers
        "access_log": False,  # the edge logs each request with its id
        "timeout_graceful_shutdown": settings.shutdown_timeout,
    }
    if settings.processes > 1:
        del backends  # checked; each process loads its own
        gc.collect()
        give_back_memory()  # the supervisor stays beside the server processes
        _run_processes(settings, options)
        return
    server = uvicorn.Server(_Config(create_app(settings, backends), **options))
    with suppress(KeyboardInterrupt):  # the re-raised Ctrl-C, after the same graceful shutdown
        server.run()
    if not server.started:
        sys.exit(STARTUP_FAILURE)  # e.g. the port is taken; uvicorn has logged why


def _run_processes(settings: Settings, options: dict[str, Any]) -> None:
    """`settings.processes` server processes on one port, a socket each (app.processes; the
    supervisor restarts one that dies), their metrics shared through files in
    PROMETHEUS_MULTIPROC_DIR: a temporary directory unless it is set. SIGTERM reaches every
    process, each drains, then this exits 0."""
    own_dir = "PROMETHEUS_MULTIPROC_DIR" not in os.environ
    if own_dir:
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="bigru-metrics-")
    config = _Config("app.main:app_from_env", factory=True, workers=settings.processes, **options)
    try:
        supervisor(config).run()
    finally:
        if own_dir:
            shutil.rmtree(os.environ["PROMETHEUS_MULTIPROC_DIR"], ignore_errors=True)
