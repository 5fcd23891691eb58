"""The test suite's backends: one fake model, and the real model with a hook before each run.

`FakeBackend` pads its batch as the real one does and answers from the padded inputs, so that a
wrong slice shows: a sentence's tags are its piece ids, its embedding their sum, its boundaries
its piece ids too. `Hooked` runs the real
backend, calling `hook(task, batch)` first (to hold a run at a gate, or to fail one).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import numpy as np

from app.model.backend import Backend
from app.model.featurize import Features, pad_batch
from app.model.spec import ModelSpec
from tests.helpers import fake_spec

FAIL_ID = 666  # a sentence holding this piece makes its batch fail
Hook = Callable[[str, list[Features]], None]


class FakeBackend:
    def __init__(
        self,
        error: Callable[[str], Exception] = RuntimeError,
        spec: ModelSpec | None = None,
        hook: Hook | None = None,
    ) -> None:
        self.spec = spec or fake_spec()
        self.providers = ["fake"]
        self.error = error  # what a batch holding FAIL_ID raises
        self.hook = hook
        self.batches: list[list[int]] = []  # lengths of each run's sentences
        self.tasks: list[str] = []  # each run's task
        self.gate: threading.Event | None = None  # when set, runs wait for it
        self.entered = threading.Event()  # a run has started

    def _run(self, task: str, batch: list[Features]) -> np.ndarray:
        """The batch's padded piece ids (B, T)."""
        self.entered.set()
        if self.hook is not None:
            self.hook(task, batch)
        if self.gate is not None:
            self.gate.wait(5)
        ids = pad_batch(batch)["input_ids"]
        self.batches.append([f.length for f in batch])
        self.tasks.append(task)
        if (ids == FAIL_ID).any():
            raise self.error("boom")
        return ids

    def tag(self, batch: list[Features]) -> list[Any]:
        ids = self._run("tag", batch)
        return [ids[i, : f.length] for i, f in enumerate(batch)]

    def embed(self, batch: list[Features]) -> list[np.ndarray]:
        ids = self._run("embed", batch)
        return [
            ids[i, : f.length].sum(keepdims=True).astype(np.float32) for i, f in enumerate(batch)
        ]

    def segment(self, batch: list[Features]) -> list[np.ndarray]:
        ids = self._run("segment", batch)
        return [ids[i, : f.length].astype(np.float32) for i, f in enumerate(batch)]


class Hooked:
    """The real `backend`, each task run after `hook(task, batch)`."""

    def __init__(self, backend: Backend, hook: Hook) -> None:
        self.backend = backend
        self.hook = hook

    @property
    def spec(self) -> ModelSpec:
        return self.backend.spec

    @property
    def providers(self) -> list[str]:
        return self.backend.providers

    def tag(self, batch: list[Features]) -> list[Any]:
        self.hook("tag", batch)
        return self.backend.tag(batch)

    def embed(self, batch: list[Features]) -> list[np.ndarray]:
        self.hook("embed", batch)
        return self.backend.embed(batch)

    def segment(self, batch: list[Features]) -> list[np.ndarray]:
        self.hook("segment", batch)
        return self.backend.segment(batch)
