"""The one loop every trainer runs: batches, dev scoring, the best evaluation kept, history,
curves, a progress bar and a wall-clock budget.

A trainer gives the loop its batches per epoch, one optimiser step per batch, its dev figures
and the figure the best evaluation maximises; the loop owns the rest. Dev is scored at the end
of every epoch, or `evals_per_epoch` times an epoch; on a new best the loop calls `keep`, which
snapshots or saves whatever the trainer keeps. The budget's minutes are checked after every
batch and every evaluation: a run out of time is scored where it stopped, then ends.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Generic, TypeVar

Batch = TypeVar("Batch")
Clock = Callable[[], float]  # seconds, as time.monotonic


class Progress:
    """A one-line progress bar per epoch, on stderr."""

    def __init__(self, epoch: int, total: int):
        self.epoch, self.total, self.t0 = epoch, total, time.monotonic()

    def show(self, k: int, loss: float, end: bool = False) -> None:
        """After batch `k`; `end` closes the line (an evaluation's row is printed next)."""
        end = end or k == self.total
        if k % 10 and not end:
            return
        done = int(30 * k / max(self.total, 1))
        rate = k / max(time.monotonic() - self.t0, 1e-9)
        sys.stderr.write(
            f"\repoch {self.epoch} [{'#' * done}{'.' * (30 - done)}] {k}/{self.total} "
            f"loss {loss:.3f} ({rate:.1f} batches/s)"
        )
        if end:
            sys.stderr.write("\n")
        sys.stderr.flush()


def plot_curves(rows: list[dict], keys: Sequence[str], path: Path) -> None:
    """One panel per history key by epoch: a loss as it is, a dev figure in %."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    epochs = [r["epoch"] for r in rows]
    fig, axes = plt.subplots(1, len(keys), figsize=(4.3 * len(keys), 3.6), squeeze=False)
    for ax, key in zip(axes[0], keys, strict=True):
        ax.plot(epochs, [r.get(key, float("nan")) for r in rows])
        ax.set_title(key.replace("_", " ") if key.endswith("loss") else f"dev {key} (%)")
        ax.set_xlabel("epoch")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


@dataclass
class Budget:
    epochs: int
    max_minutes: float | None = None  # the whole run, checked after every batch
    patience: int | None = None  # evaluations without a better dev figure before stopping


def _nothing(epoch: int, dev: dict[str, float]) -> None:
    pass


@dataclass
class Trainer(Generic[Batch]):
    """What one trainer brings to the loop."""

    batches: Callable[[int], Sequence[Batch]]  # epoch -> its batches, in order
    step: Callable[[Batch], dict[str, float]]  # one optimiser step -> its losses, by name
    evaluate: Callable[[], dict[str, float]] = dict  # dev figures (none: nothing is scored)
    # the figure the best evaluation maximises; None: each evaluation is the best so far
    select: Callable[[dict[str, float]], float] | None = None
    keep: Callable[[int, dict[str, float]], None] = _nothing  # (epoch, dev) on a new best
    # (epoch, dev) after every evaluation, e.g. a scheduler's step or the last checkpoint
    after_eval: Callable[[int, dict[str, float]], None] = _nothing
    evals_per_epoch: int = 1  # dev scored every len(batches) // this batches, and at the end
    evaluate_first: bool = False  # dev scored before training too (epoch 0), kept unless bettered
    curves: tuple[str, ...] = ()  # history keys drawn in curves.png beside the history


@dataclass
class History:
    rows: list[dict] = field(default_factory=list)  # one per evaluation
    best_row: int | None = None  # the best evaluation's index in `rows`

    @property
    def best(self) -> dict:
        """The best evaluation's row; the last one if no figure was ever a best."""
        return self.rows[-1 if self.best_row is None else self.best_row]

    @property
    def best_epoch(self) -> float:
        return 0 if self.best_row is None else self.rows[self.best_row]["epoch"]


def run(
    trainer: Trainer,
    budget: Budget,
    out: Path | None = None,
    history_file: str = "history.json",
    clock: Clock = time.monotonic,
) -> History:
    """Train epoch by epoch; after every evaluation `out` gets the history (and curves.png)."""
    loop = _Loop(trainer, budget, out, history_file, clock)
    if trainer.evaluate_first:
        loop.evaluate(0, 0, {})
    for epoch in range(1, budget.epochs + 1):
        if loop.epoch(epoch):
            break
    return loop.history


class _Loop:
    def __init__(
        self, trainer: Trainer, budget: Budget, out: Path | None, history_file: str, clock: Clock
    ):
        self.trainer, self.budget, self.clock = trainer, budget, clock
        self.out, self.history_file = out, history_file
        self.history, self.best, self.t0 = History(), float("-inf"), clock()
        minutes = budget.max_minutes
        self.deadline = float("inf") if minutes is None else self.t0 + 60 * minutes

    def epoch(self, epoch: int) -> bool:
        """One pass over the epoch's batches, dev scored where the trainer asks; whether the
        run stops."""
        batches = self.trainer.batches(epoch)
        n = len(batches)
        every = max(1, n // self.trainer.evals_per_epoch)
        bar, totals = Progress(epoch, n), {}
        for k, batch in enumerate(batches, 1):
            for name, value in self.trainer.step(batch).items():
                totals[name] = totals.get(name, 0.0) + value
            late = self.clock() > self.deadline
            due = late or k % every == 0 or k == n
            bar.show(k, next(iter(totals.values()), 0.0) / k, end=due)
            if due:
                at = epoch if late or k == n else epoch - 1 + k / n
                if self.evaluate(epoch, at, {name: v / k for name, v in totals.items()}):
                    return True
        return self.evaluate(epoch, epoch, {}) if n == 0 else False

    def evaluate(self, epoch: int, at: float, losses: dict[str, float]) -> bool:
        """Score dev, keep a new best, record and show the row; whether the run stops."""
        dev = self.trainer.evaluate()
        rows = self.history.rows
        minutes = round((self.clock() - self.t0) / 60, 2)
        rows.append({"epoch": at, **losses, **dev, "minutes": minutes})
        select = self.trainer.select
        figure = select(dev) if select is not None else float(len(rows))
        improved = figure > self.best
        if improved:
            self.best, self.history.best_row = figure, len(rows) - 1
            self.trainer.keep(epoch, dev)
        self.trainer.after_eval(epoch, dev)
        _show(rows[-1], improved and select is not None)
        if self.out is not None:
            self._write()
        best = -1 if self.history.best_row is None else self.history.best_row
        patience = self.budget.patience
        stalled = patience is not None and len(rows) - 1 - best >= patience
        return stalled or self.clock() > self.deadline

    def _write(self) -> None:
        assert self.out is not None
        self.out.mkdir(parents=True, exist_ok=True)
        (self.out / self.history_file).write_text(json.dumps(self.history.rows, indent=1))
        if self.trainer.curves:
            plot_curves(self.history.rows, self.trainer.curves, self.out / "curves.png")


def _show(row: dict, improved: bool) -> None:
    at = row["epoch"]
    shown = " ".join(f"{k} {v:.3f}" if "loss" in k else f"{k} {v:.2f}" for k, v in row.items()
                     if k not in ("epoch", "minutes"))  # fmt: skip
    epoch = at if isinstance(at, int) else f"{at:.2f}"
    mark = " *" if improved else ""
    print(f"epoch {epoch}: {shown}{mark} ({row['minutes']:.1f} min)", flush=True)
