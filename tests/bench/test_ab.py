"""bench.ab: medians over rounds, and one tiny A/B run of two real servers (the head's on
granian, bench/granian_app.py)."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from bench import ab


def test_ab_medians_over_rounds() -> None:
    def run(sps: float, p99: float) -> dict[str, Any]:
        latency = {"p50": p99 / 2, "p99": p99}
        return {"sentences_per_s": sps, "requests_per_s": sps / 2, "latency_ms": latency,
                "server": {"cpu": 1.0}}  # fmt: skip

    s = ab.summarize([run(100, 30), run(300, 10), run(200, 20)])
    assert (s["sentences_per_s"], s["requests_per_s"], s["p99_ms"]) == (200, 100, 20)
    assert s["each_sentences_per_s"] == [100, 300, 200] and s["rounds"] == 3


@pytest.mark.slow  # subprocesses
def test_ab_runs_both_sides_in_turn(
    tmp_path: Path, model_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """HEAD in a temporary worktree against this checkout, one short round each, the head's
    server with an environment of its own; the worktree is gone afterwards (this run's: other
    checkouts of the repository may run theirs)."""
    trees: list[Path] = []
    real_worktree = ab.worktree

    @contextmanager
    def worktree(revision: str) -> Iterator[Path]:
        with real_worktree(revision) as tree:
            trees.append(tree)
            yield tree

    monkeypatch.setattr(ab, "worktree", worktree)
    envs: list[dict[str, str]] = []
    real_server = ab.service.server

    def server(model_dir: Path, env: dict[str, str], *args: Any, **kwargs: Any) -> Any:
        envs.append(env)
        return real_server(model_dir, env, *args, **kwargs)

    monkeypatch.setattr(ab.service, "server", server)
    texts = tmp_path / "texts.json"
    texts.write_text(json.dumps(["Alice moved to Paris.", "It rained.", "Bob left early."]))
    out = tmp_path / "ab.json"
    ab.main(["--base", "HEAD", "--rounds", "1", "--seconds", "0.5", "--warmup", "0.2",
             "--clients", "2", "--per-request", "2", "--texts", str(texts),
             "--model-dir", str(model_dir), "--out", str(out),
             "--env", "BIGRU_MAX_WAIT_MS=1", "--env-head", "BIGRU_MAX_PADDING=1.5",
             "--module-head", "bench.granian_app"])  # fmt: skip
    result = json.loads(out.read_text())
    for side in ("base", "head"):
        assert result[side]["rounds"] == 1 and result[side]["sentences_per_s"] > 0
    assert result["setup"]["env"] == {"BIGRU_MAX_WAIT_MS": "1"}
    assert envs == [{"BIGRU_MAX_WAIT_MS": "1"},  # base, then head with its own over --env
                    {"BIGRU_MAX_WAIT_MS": "1", "BIGRU_MAX_PADDING": "1.5"}]  # fmt: skip
    assert result["setup"]["module_head"] == "bench.granian_app"  # the app served by granian
    listed = subprocess.run(["git", "-C", str(ab.ROOT), "worktree", "list"], capture_output=True,
                            text=True, check=True).stdout  # fmt: skip
    assert len(trees) == 1 and str(trees[0]) not in listed and not trees[0].exists()


@pytest.mark.slow  # subprocesses
def test_ab_gives_env_to_the_servers(tmp_path: Path, model_dir: Path) -> None:
    """`--env` reaches the servers: one the service rejects stops the first at start-up."""
    texts = tmp_path / "texts.json"
    texts.write_text(json.dumps(["It rained."]))
    with pytest.raises(RuntimeError, match="max_batch_size"):
        ab.main(["--base", "HEAD", "--rounds", "1", "--texts", str(texts),
                 "--model-dir", str(model_dir), "--env", "BIGRU_MAX_BATCH_SIZE=0"])  # fmt: skip
