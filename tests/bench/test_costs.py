"""The stage clock is exclusive (a caller's stage pauses while a clocked callee runs), and the
projection follows its formulas."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest

from bench import costs, service

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


def test_projection_is_cpu_bound_and_compounds_the_measured_efficiency() -> None:
    runs = {
        f"{task}.{kind}": {"total_ms": ms, "per_request": per}
        for task, kind, ms, per in (
            ("tag", "single", 2.0, 1),
            ("tag", "lists", 32.0, 32),
            ("embed", "single", 0.5, 1),
            ("embed", "lists", 8.0, 32),
        )
    }
    rows = [
        {"task": t, "processes": p, "requests_per_s": r}
        for t, p, r in (("tag", 1, 500), ("tag", 2, 800), ("embed", 1, 2000), ("embed", 2, 3000))
    ]
    out = costs._projection({"runs": runs}, rows)
    tag = out["tag"]
    assert tag["efficiency_1_to_2"] == pytest.approx(0.8)
    assert [r["cpu_bound_req_s"] for r in tag["rows"]] == pytest.approx([1000, 2000, 4000, 8000])
    assert [r["scaled_req_s"] for r in tag["rows"]] == pytest.approx(
        [800, 800 * 2 * 0.8, 800 * 4 * 0.64, 800 * 8 * 0.512]
    )
    assert tag["single_over_lists_cpu_bound"] == pytest.approx(0.5)
    assert costs._projection({"runs": runs}, [])["embed"]["rows"][1]["scaled_req_s"] is None


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
