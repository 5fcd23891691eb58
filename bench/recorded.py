"""`python -m bench.recorded`: the service exactly as `python -m app` runs it, except that its
backend keeps every batch it is given, so the ceiling can be timed on those very batches.

Same `Settings` from the same environment, same `create_app`, same uvicorn options; the one
addition is `POST /bench/batches`, answered in front of the app, which pickles the batches
recorded so far to the file named by `BIGRU_BENCH_BATCHES` and forgets them (called once
before a run to drop the warm-up's, once after). Recording is a list append per ORT run, on
the ORT thread.
"""

from __future__ import annotations

import json
import os
import pickle
from pathlib import Path

import numpy as np
import uvicorn
from starlette.types import ASGIApp, Receive, Scope, Send

from app.config import Settings
from app.logs import configure_logging
from app.main import create_app
from app.model.backend import OnnxBackend

Feeds = dict[str, np.ndarray]
_ROUTE = ("POST", "/bench/batches")


class RecordingBackend(OnnxBackend):
    """OnnxBackend that remembers each run's feeds and requested outputs."""

    def __init__(self, model_dir: Path, providers: list[str], intra_op_threads: int) -> None:
        super().__init__(model_dir, providers, intra_op_threads)
        self.runs: list[tuple[Feeds, list[str]]] = []

    def run(self, feeds: Feeds, outputs: list[str]) -> dict[str, np.ndarray]:
        self.runs.append((feeds, outputs))
        return super().run(feeds, outputs)


class WithBatches:
    """The service's ASGI app with `POST /bench/batches` in front of it: the service's own
    routes and middleware stay as they are, whatever they are built from."""

    def __init__(self, app: ASGIApp, backend: RecordingBackend, out: Path) -> None:
        self.app, self.backend, self.out = app, backend, out

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or (scope["method"], scope["path"]) != _ROUTE:
            await self.app(scope, receive, send)
            return
        runs, self.backend.runs = self.backend.runs, []
        self.out.write_bytes(pickle.dumps(runs))
        body = json.dumps({"batches": len(runs)}).encode()
        headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body})


def main() -> None:
    settings = Settings()
    configure_logging(settings.log_json, settings.log_level)
    backend = RecordingBackend(settings.model_dir, settings.providers, settings.intra_op_threads)
    out = Path(os.environ["BIGRU_BENCH_BATCHES"])
    uvicorn.run(
        WithBatches(create_app(settings, backend), backend, out),
        host=settings.host,
        port=settings.port,
        lifespan="on",
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=settings.shutdown_timeout,
    )


if __name__ == "__main__":
    main()
