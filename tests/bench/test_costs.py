"""bench.costs: the stage clock is exclusive (a caller's stage pauses while a clocked callee
runs), the instrumented server clocks every layer, and the report shows what it measured."""

from __future__ import annotations

import pickle
import time
from pathlib import Path

import httpx
import numpy as np
import pytest

from bench import costs, report, service

ROOT = Path(__file__).resolve().parents[2]


def _spin(seconds: float) -> None:
    end = time.thread_time() + seconds
    while time.thread_time() < end:
        pass


def test_a_stage_excludes_the_stages_it_calls() -> None:
    inner = costs._timed("inner_test", lambda: _spin(0.05))

    def outer_body() -> None:
        _spin(0.02)
        inner()
        _spin(0.02)

    outer = costs._timed("outer_test", outer_body)
    before = costs.snapshot()
    outer()
    after = costs.snapshot()
    spent = {k: after.get(k, 0.0) - before.get(k, 0.0) for k in after}
    assert spent["loop.inner_test"] == pytest.approx(0.05, abs=0.01)
    assert spent["loop.outer_test"] == pytest.approx(0.04, abs=0.01)


def test_the_costs_report_per_sentence_projection_and_p50() -> None:
    """The layers per sentence (lists divided by their size), one-sentence req/s CPU-bound on
    more cores, single / lists with every core busy, the p50 ratio and idle RSS."""
    runs = {
        f"{task}.{kind}": {"ms": {"ort": ms / 2}, "total_ms": ms, "per_request": per}
        for task, kind, ms, per in (("tag", "single", 2.0, 1), ("tag", "lists", 32.0, 32),
                                    ("embed", "single", 0.5, 1), ("embed", "lists", 8.0, 32))
    }  # fmt: skip
    p50 = {"default.tag": 3.0, "1 process.tag": 2.0, "default.embed": 1.0, "1 process.embed": 1.0}
    section = {"runs": runs, "p50_ms": p50, "p50_rounds": {k: [v] * 3 for k, v in p50.items()},
               "idle_rss_mb": {"default": [150.0, 200.0], "1 process": [198.0]}}  # fmt: skip
    text = "\n".join(report._costs({"costs": section}))
    assert "| ONNX Runtime | 1.000 | 0.500 | 0.250 | 0.125 |" in text
    assert (
        "| **total (the process's CPU)** | **2.000** | **1.000** | **0.500** | **0.250** |" in text
    )
    assert "| 4 | 2,000 | 8,000 |" in text  # cores x 1000 / CPU-ms per request
    assert "/tag: with every core busy, single / lists tends to 0.50" in text
    assert "defaults 3.00 ms, 1 process 2.00 ms (1.50x; median of 3 alternating rounds)" in text
    assert "Idle RSS, default: 150 MB, 200 MB (the first is the parent)." in text


def test_kept_runs_are_written_whole_and_forgotten(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With BIGRU_BENCH_BATCHES, each ORT run's feeds and outputs are kept; a write (SIGUSR1's
    handler) hands them over once."""
    out = tmp_path / "batches.pickle"
    monkeypatch.setenv("BIGRU_BENCH_BATCHES", str(out))
    monkeypatch.setattr(costs, "_runs", [])
    monkeypatch.setattr(costs, "_run", lambda self, feeds, outputs: {o: 0 for o in outputs})
    feeds = {"input_ids": np.zeros((1, 2), dtype=np.int64)}
    assert costs._recording_run(None, feeds, ["embedding"]) == {"embedding": 0}  # type: ignore[arg-type]
    costs._write()
    ((kept, outputs),) = pickle.loads(out.read_bytes())
    assert kept["input_ids"].shape == (1, 2) and outputs == ["embedding"]
    costs._write()
    assert pickle.loads(out.read_bytes()) == []


@pytest.mark.slow  # a real server in a subprocess
def test_the_costs_server_clocks_every_layer_of_real_requests(tmp_path: Path) -> None:
    """`python -m bench.costs` serves as the app does, and the layers of 200 /tag requests
    add up to the process's CPU (the rest of the loop and other threads by difference)."""
    out = tmp_path / "costs.json"
    env = {"BIGRU_PROCESSES": "1", "BIGRU_WORKERS": "1", "BIGRU_BENCH_COSTS": str(out)}
    model = ROOT / "models" / "bigru-en"
    with service.server(model, env, tmp_path / "server.log", "bench.costs") as (base, pid):

        def run() -> dict:
            with httpx.Client(base_url=base, trust_env=False) as client:
                for i in range(200):
                    r = client.post("/tag", json={"inputs": f"Sentence number {i} is here."})
                    assert r.status_code == 200
            return {"requests_per_s": 200.0, "wall_s": 1.0}

        row = costs._request_costs(pid, out, run)
    ms = row["ms"]
    for layer in ("http_parse", "http_write", "validation", "tokenizing", "ort", "decode", "json"):
        assert ms[layer] > 0, layer
    assert ms["ort"] > ms["validation"]
    assert sum(ms.values()) == pytest.approx(row["total_ms"], rel=1e-6)
