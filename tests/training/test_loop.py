"""training/loop.py on a real tiny model (a linear regression trained by SGD): the best
evaluation's weights are what `keep` gets, patience and the minutes budget stop the run, and the
history (and curves) are written after every evaluation."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from torch import nn  # noqa: E402

from training.loop import Budget, Trainer, run  # noqa: E402


class Regression:
    """y = 2x learnt by a Linear(1, 1); its dev figure is scripted, so a test says which
    evaluation is the best, while the weights kept are the real ones of that moment."""

    def __init__(self, figures: list[float], seconds_per_step: float = 0.0):
        torch.manual_seed(0)
        self.model = nn.Linear(1, 1)
        self.opt = torch.optim.SGD(self.model.parameters(), lr=0.1)
        x = torch.linspace(-1, 1, 16)[:, None]
        self.data = [(x[i : i + 4], 2 * x[i : i + 4]) for i in range(0, 16, 4)]  # 4 batches
        self.figures, self.seconds_per_step = figures, seconds_per_step
        self.now = 0.0  # the clock the loop reads; each step advances it
        self.steps = 0
        self.weights: list[float] = []  # at each evaluation
        self.kept: list[tuple[int, float]] = []  # (epoch, weight) at each keep
        self.after: list[int] = []  # the epoch of each after_eval

    def step(self, batch: tuple) -> dict[str, float]:
        x, y = batch
        loss = nn.functional.mse_loss(self.model(x), y)
        self.opt.zero_grad()
        loss.backward()
        self.opt.step()
        self.steps += 1
        self.now += self.seconds_per_step
        return {"loss": loss.item()}

    def evaluate(self) -> dict[str, float]:
        self.weights.append(self.model.weight.item())
        return {"figure": self.figures[len(self.weights) - 1]}

    def trainer(self, **options) -> Trainer:
        return Trainer(
            batches=lambda epoch: self.data,
            step=self.step,
            evaluate=self.evaluate,
            keep=lambda epoch, dev: self.kept.append((epoch, self.model.weight.item())),
            after_eval=lambda epoch, dev: self.after.append(epoch),
            **options,
        )


def test_the_best_evaluation_is_kept_and_the_history_written(tmp_path: Path) -> None:
    reg = Regression([1.0, 3.0, 2.0])
    trainer = reg.trainer(select=lambda dev: dev["figure"], curves=("loss", "figure"))
    history = run(trainer, Budget(epochs=3), tmp_path, clock=lambda: reg.now)
    assert history.best_row == 1 and history.best_epoch == 2 and history.best["figure"] == 3.0
    assert reg.kept == [(1, reg.weights[0]), (2, reg.weights[1])]  # the weights of that moment
    assert reg.weights[1] != reg.weights[2]  # training went on after the best epoch
    assert reg.after == [1, 2, 3] and reg.steps == 12
    rows = json.loads((tmp_path / "history.json").read_text())
    assert rows == history.rows and [r["epoch"] for r in rows] == [1, 2, 3]
    assert rows[2]["loss"] < rows[0]["loss"]  # the mean of each epoch's real losses
    assert (tmp_path / "curves.png").stat().st_size > 0


def test_patience_stops_the_run_after_evaluations_without_a_better_figure() -> None:
    reg = Regression([1.0, 2.0, 2.0, 1.5, 9.0])
    trainer = reg.trainer(select=lambda dev: dev["figure"])
    history = run(trainer, Budget(epochs=5, patience=2), clock=lambda: reg.now)
    assert [r["epoch"] for r in history.rows] == [1, 2, 3, 4]  # 2 is never bettered by 3 or 4
    assert history.best_epoch == 2 and reg.steps == 16


def test_the_minutes_budget_stops_inside_an_epoch_and_scores_where_it_stopped() -> None:
    reg = Regression([1.0, 2.0], seconds_per_step=25.0)
    trainer = reg.trainer(select=lambda dev: dev["figure"])
    history = run(trainer, Budget(epochs=5, max_minutes=1.0), clock=lambda: reg.now)
    assert reg.steps == 3  # 75 s is past the minute: the epoch's last batch is never run
    assert [r["epoch"] for r in history.rows] == [1] and history.rows[0]["minutes"] == 1.25
    assert reg.kept == [(1, reg.weights[0])]


def test_evaluations_before_training_and_within_an_epoch() -> None:
    reg = Regression([0.0] * 5)
    trainer = reg.trainer(evals_per_epoch=2, evaluate_first=True)  # no figure: the latest is best
    history = run(trainer, Budget(epochs=2), clock=lambda: reg.now)
    assert [r["epoch"] for r in history.rows] == [0, 0.5, 1, 1.5, 2]
    assert "loss" not in history.rows[0] and history.best_row == 4
    assert [epoch for epoch, _ in reg.kept] == [0, 1, 1, 2, 2] and reg.after == [0, 1, 1, 2, 2]
