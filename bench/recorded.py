"""`python -m bench.recorded`: the service exactly as `python -m app` runs it, except that its
backend keeps every batch it is given, so the ceiling can be timed on those very batches.

Same `Settings` from the same environment, same `create_app`, same uvicorn options; the one
addition is `POST /bench/batches`, which pickles the batches recorded so far to the file named
by `BIGRU_BENCH_BATCHES` and forgets them (called once before a run to drop the warm-up's,
once after). Recording is a list append per ORT run, on the ORT thread.
"""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import numpy as np
import uvicorn

from app.backend import OnnxBackend
from app.config import Settings
from app.logs import configure_logging
from app.main import create_app

Feeds = dict[str, np.ndarray]


class RecordingBackend(OnnxBackend):
    """OnnxBackend that remembers each run's feeds and requested outputs."""

    def __init__(self, model_dir: Path, providers: list[str], intra_op_threads: int) -> None:
        super().__init__(model_dir, providers, intra_op_threads)
        self.runs: list[tuple[Feeds, list[str]]] = []

    def run(self, feeds: Feeds, outputs: list[str]) -> dict[str, np.ndarray]:
        self.runs.append((feeds, outputs))
        return super().run(feeds, outputs)


def main() -> None:
    settings = Settings()
    configure_logging(settings.log_json, settings.log_level)
    backend = RecordingBackend(settings.model_dir, settings.providers, settings.intra_op_threads)
    app = create_app(settings, backend)
    out = Path(os.environ["BIGRU_BENCH_BATCHES"])

    async def dump_batches() -> dict[str, int]:
        runs, backend.runs = backend.runs, []
        out.write_bytes(pickle.dumps(runs))
        return {"batches": len(runs)}

    app.add_api_route("/bench/batches", dump_batches, methods=["POST"])
    uvicorn.run(
        app,
        host=settings.host,
        port=settings.port,
        lifespan="on",
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=settings.shutdown_timeout,
    )


if __name__ == "__main__":
    main()
