"""`python -m bench.recorded`: `python -m app` itself, except that its ORT backend keeps the feeds
of every run, so the ceiling can be timed on the very batches the service formed.

SIGUSR1 writes the runs recorded so far to the file named by `BIGRU_BENCH_BATCHES` (a pickle
of `(feeds, outputs)` pairs) and forgets them: once before a load run to drop the warm-up's,
once after. Recording is a list append per ORT run, on the worker thread.
"""

from __future__ import annotations

import os
import pickle
import runpy
import signal
from pathlib import Path
from types import FrameType

import numpy as np

from app.model.backend import OnnxBackend, Outputs

Feeds = dict[str, np.ndarray]
runs: list[tuple[Feeds, list[str]]] = []
_run = OnnxBackend.run


def _recording_run(self: OnnxBackend, feeds: Feeds, outputs: list[str]) -> Outputs:
    runs.append((feeds, outputs))
    return _run(self, feeds, outputs)


def write_runs(signum: int = signal.SIGUSR1, frame: FrameType | None = None) -> None:
    """The runs so far to BIGRU_BENCH_BATCHES, whole (written aside, then renamed)."""
    taken = runs[:]
    del runs[: len(taken)]  # runs appended meanwhile stay for the next write
    out = Path(os.environ["BIGRU_BENCH_BATCHES"])
    out.with_suffix(".tmp").write_bytes(pickle.dumps(taken))
    out.with_suffix(".tmp").replace(out)


def main() -> None:
    OnnxBackend.run = _recording_run  # type: ignore[method-assign]
    signal.signal(signal.SIGUSR1, write_runs)
    runpy.run_module("app", run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
