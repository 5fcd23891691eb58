"""The app: `create_app(settings)` wires settings, backend, batcher, engine and routes; `run()`
serves it with uvicorn (`python -m app`)."""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import uvicorn
from fastapi import FastAPI
from pydantic import ValidationError

from app.api import install_middleware, router
from app.backend import OnnxBackend
from app.batcher import Batcher, BatchLimits
from app.config import Settings
from app.engine import Engine
from app.errors import ModelLoadError, install_error_handlers
from app.logs import configure_logging
from app.metrics import Metrics

log = logging.getLogger(__name__)


def create_app(settings: Settings | None = None, backend: OnnxBackend | None = None) -> FastAPI:
    """The service; `backend` is loaded from `settings.model_dir` at startup unless given."""
    settings = settings or Settings()
    metrics = Metrics()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        loaded = backend or await asyncio.to_thread(
            OnnxBackend, settings.model_dir, settings.providers, settings.intra_op_threads
        )
        limits = BatchLimits(
            settings.max_batch_size,
            settings.max_batch_tokens,
            settings.max_wait_ms,
            settings.max_queue,
        )
        batcher = Batcher(loaded, limits, metrics)
        batcher.start()
        try:
            engine = Engine(loaded.spec, batcher, settings, loaded.providers)
            await engine.warm_up()
            app.state.engine = engine  # from here /health is 200
            log.info("ready")
            yield
        finally:
            app.state.engine = None
            await batcher.stop()  # uvicorn has already let in-flight requests finish

    app = FastAPI(title="bigru-serve", lifespan=lifespan)
    app.state.settings = settings
    app.state.metrics = metrics
    app.state.engine = None
    app.include_router(router)
    install_error_handlers(app)
    install_middleware(app, settings, metrics)
    return app


def run() -> None:
    """Serve on settings.host:settings.port; a bad setting or model exits 1 with one line."""
    try:
        settings = Settings()
    except ValidationError as e:
        sys.exit(f"bigru-serve: bad settings: {e}".replace("\n", " "))
    configure_logging(settings.log_json, settings.log_level)
    try:
        backend = OnnxBackend(settings.model_dir, settings.providers, settings.intra_op_threads)
    except ModelLoadError as e:
        sys.exit(f"bigru-serve: cannot load the model: {e}")
    uvicorn.run(
        create_app(settings, backend),
        host=settings.host,
        port=settings.port,
        lifespan="on",
        log_config=None,  # configure_logging's handler already serves uvicorn's loggers
        access_log=False,  # the request middleware logs each request with its id
        timeout_graceful_shutdown=settings.shutdown_timeout,
    )
