"""The run's numbers and its report from a fake results dict: targets, verdicts, bounds,
JSON and Markdown; a missing phase gives n/a, never an exception."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from bench import report
from bench.targets import summarize


def _service(task: str, batching: str, clients: int, sps: float, p99: float) -> dict[str, Any]:
    return {
        "task": task,
        "batching": batching,
        "clients": clients,
        "per_request": 1,
        "requests_per_s": sps,
        "sentences_per_s": sps,
        "errors": 0,
        "client_cpu": 0.3,
        "latency_ms": {
            "count": 100,
            "mean": p99 / 3,
            "max": p99,
            "p50": p99 / 3,
            "p90": p99 / 2,
            "p95": p99 / 1.5,
            "p99": p99,
        },
        "server": {"mean_batch_size": 8.0, "ort_busy": 0.9, "cpu": 1.2},
    }


def _engine(engine: str, task: str, B: int, pps: float) -> dict[str, Any]:
    return {
        "engine": engine,
        "task": task,
        "batch_size": B,
        "threads": 2,
        "runs": 10,
        "seconds": 1.0,
        "pieces_per_s": pps,
        "sentences_per_s": pps / 15,
    }


def fake_results() -> dict[str, Any]:
    service = [
        _service(task, b, n, sps * (1 if b == "on" else 0.25) * min(n, 32) / 32, 10.0 * n)
        for task, sps in (("tag", 800.0), ("embed", 1500.0))
        for b in ("on", "off")
        for n in (1, 8, 32, 128)
    ]
    engine = [
        _engine(e, task, B, pps * B**0.5 * (1 if e == "ort" else 0.5))
        for e in ("ort", "torch")
        for task, pps in (("tag", 2000.0), ("embed", 4000.0))
        for B in (1, 8, 32, 128)
    ]
    ceiling = {
        task: {
            "sentences_per_s": sps,
            "pieces_per_s": sps * 15,
            "mean_batch_size": 20.0,
            "recorded_service_sentences_per_s": sps * 0.8,
            "cpu_s": 1.0,  # ORT's CPU over the replay: 1 ms per sentence for /tag
            "sentences": int(sps),
        }
        for task, sps in (("tag", 1000.0), ("embed", 1600.0))
    }
    return {
        "meta": {"date": "2026-01-01", "host": "test", "git": "abc", "model_dir": "m"},
        "machine": {"cpu": "Test CPU", "cores": 2, "loadavg_start": 0.1},
        "notes": [],
        "errors": {"peer": "RuntimeError: boom"},
        "corpus": {"mean_pieces": 15.0},
        "peak": {"as_is": {"n": 1024, "gflops": 100.0}, "single_thread": {"gflops": 60.0}},
        "flops": {
            "per_path": {
                "tag": {"piece": 4_000_000, "sentence": 0},
                "embed": {"piece": 2_000_000, "sentence": 800_000},
            }
        },
        "engine": {"rows": engine, "notes": ["PyTorch eager"]},
        "ceiling": ceiling,
        "service": {"rows": service},
        "peer": {},  # the teacher failed: its target is n/a
    }


def test_summary_targets_and_bounds() -> None:
    summary = summarize(fake_results())
    targets = {t["key"]: t for t in summary["targets"]}
    assert targets["ceiling_tag"]["value"] == pytest.approx(0.8) and targets["ceiling_tag"]["pass"]
    assert targets["ceiling_embed"]["value"] == pytest.approx(1500 / 1600)
    assert targets["batching_tag"]["value"] == pytest.approx(4.0)
    assert targets["ort_torch_embed"]["value"] == pytest.approx(2.0)
    assert targets["p99_tag_8"]["value"] == 80.0 and targets["p99_tag_8"]["pass"] is False
    assert targets["embed_vs_teacher"]["pass"] is None
    tag = {label: by["tag"] for label, by in summary["bounds"].items()}
    assert tag["server CPU-ms per request, 32 clients"] == pytest.approx(1000 * 1.2 / 800)
    assert tag["ORT CPU-ms per sentence in the ceiling"] == pytest.approx(1000 / 1000)
    assert tag["front end / ORT"] == pytest.approx(0.5)
    assert tag["so service / ceiling at most"] == pytest.approx(1.0 / 1.5)
    assert tag["ORT alone, batch 32 / batch 1"] == pytest.approx(32**0.5)
    useful = {e: pps * 32**0.5 * 4e6 / 1e9 for e, pps in (("ort", 2000), ("torch", 1000))}
    assert tag["ORT's share of the matmul peak, batch 32"] == pytest.approx(useful["ort"] / 100)
    assert tag["PyTorch's share of the matmul peak, batch 32"] == pytest.approx(
        useful["torch"] / 100
    )
    assert tag["p99 / mean latency at 8 clients"] == pytest.approx(3.0)
    assert tag["req/s that p99 <= 50 ms needs there"] == pytest.approx(8000 / (50 / 3))


def _single(task: str, request: str, text: str, sps: float, errors: int = 0) -> dict[str, Any]:
    per = 32 if request == "lists" else 1
    row = _service(task, "on", 8 if per > 1 else 32, sps / per, 50.0)
    del row["batching"]
    row.update(request=request, text=text, per_request=per, sentences_per_s=sps, tool="wrk")
    row.update(errors=errors, distinct_bodies=1000, requests_sent=500)
    return row


def issue_results() -> dict[str, Any]:
    """fake_results with the single, processes and spaCy phases, one batching run with errors
    and one with a worse p99."""
    results = fake_results()
    results["single"] = {
        "rows": [
            _single("tag", "lists", "repeated", 1000.0) | {"words_per_s": 12_000.0},
            _single("tag", "single", "repeated", 900.0),
            _single("tag", "single", "novel", 700.0),
            _single("embed", "lists", "repeated", 4000.0),
            _single("embed", "single", "repeated", 1600.0),
            _single("embed", "single", "novel", 1200.0, errors=3),
        ]
    }
    results["processes"] = {
        "settings": [1, 2],
        "rows": [
            _service(task, "on", 32, rps, 40.0)
            | {"processes": n, "server_processes": n, "tool": "wrk"}
            for task in ("tag", "embed")
            for n, rps in ((1, 600.0), (2, 1200.0))
        ],
    }
    results["spacy"] = {
        "version": "3.8.0",
        "sm_overrides": ["ner has a tok2vec of its own"],
        "init_examples": 500,
        "labels": {"tagger": 17, "ner": ["LOC", "ORG", "PER"]},
        "config": '[nlp]\nlang = "en"',
        "stand_in": {"batch_size": 256, "words_per_s": 4000.0, "sentences_per_s": 300.0,
                     "cores": 1.0},
        "sm": {"version": "3.8.0", "words_per_s": 1500.0, "cores": 1.0},
    }  # fmt: skip
    rows = results["service"]["rows"]
    next(r for r in rows if (r["task"], r["batching"], r["clients"]) == ("tag", "off", 8))[
        "errors"
    ] = 2
    worse = next(r for r in rows if (r["task"], r["batching"], r["clients"]) == ("embed", "on", 1))
    worse["latency_ms"] = worse["latency_ms"] | {"p99": 20.0}  # off: 10 ms
    results["ceiling"]["embed"] |= {"cpu_s": 0.5, "sentences": 1000}  # 0.5 ms per sentence
    return results


def test_issue_targets_and_verdicts() -> None:
    """One sentence per request vs lists (the goal for /tag: 0.7), batching never costs, front
    end vs ORT, spaCy."""
    summary = summarize(issue_results())
    t = {x["key"]: x for x in summary["targets"]}
    got = {k: (round(x["value"], 3), x["verdict"]) for k, x in t.items() if x["value"] is not None}
    assert got["single_lists_tag"] == (0.9, "PASS")
    assert got["single_lists_embed"] == (0.4, "FAIL")
    assert got["single_lists_tag_novel"] == (0.7, "info")
    assert got["single_lists_embed_novel"] == (0.3, "info")  # its errors fail nothing
    assert got["batching_tag_1_rps"] == (4.0, "PASS") and got["batching_tag_1_p99"] == (1, "PASS")
    for q in ("rps", "p50", "p99"):  # the off run at 8 clients had errors
        assert t[f"batching_tag_8_{q}"]["verdict"] == "FAIL (errors)"
    assert got["batching_embed_1_p99"] == (2.0, "FAIL")
    assert got["batching_embed_1_p50"] == (1.0, "PASS")
    assert got["batching_tag_128_rps"] == (4.0, "PASS") and t["batching_tag_128_rps"]["op"] == ">"
    assert got["front_ort_tag"] == (0.5, "PASS")  # (1.5 - 1.0) / 1.0: one core busy, 1000/s
    assert got["front_ort_embed"] == (0.6, "PASS")  # (0.8 - 0.5) / 0.5
    assert got["tag_vs_spacy"] == (3.0, "FAIL")
    assert got["tag_vs_sm"] == (8.0, "PASS")  # 12,000 words/s against sm's 1,500
    b = {label: by["embed"] for label, by in summary["bounds"].items()}
    assert b["server CPU-ms per sentence, lists"] == pytest.approx(1000 * 1.2 / 4000)
    assert b["so single / lists at most"] == pytest.approx((1.2 / 4000) / (1.2 / 1600))


def test_issue_targets_without_their_phases() -> None:
    """A failed single or spaCy phase leaves its targets n/a; a failed service phase, the
    batching and front-end ones."""
    results = issue_results()
    del results["single"], results["spacy"]
    t = {x["key"]: x for x in summarize(results)["targets"]}
    for key in ("single_lists_tag", "single_lists_embed_novel", "tag_vs_spacy", "tag_vs_sm"):
        assert t[key]["value"] is None and t[key]["verdict"] in ("n/a", "info")
    assert t["batching_embed_32_rps"]["pass"] is True
    results["service"] = {}
    t = {x["key"]: x for x in summarize(results)["targets"]}
    assert t["batching_embed_32_rps"]["pass"] is None and t["front_ort_tag"]["pass"] is None
    text = report.markdown(results, summarize(results))
    assert "| /tag front-end CPU per request / ORT CPU per sentence (32 clients) | n/a |" in text


def test_markdown_of_the_issue_phases() -> None:
    results = issue_results()
    text = report.markdown(results, summarize(results))
    assert (
        "| /tag batching on / off at 8 clients: p99 latency | 1.00 | <= 1.05 | FAIL (errors) |"
        in text
    )
    assert (
        "| /tag lists words/s vs the spaCy en_core_web_sm stand-in | 3.00 | >= 4 | FAIL |" in text
    )
    single = "| /tag one sentence per request (32 conns) / lists of 32 (8), sentences/s, repeated"
    assert f"{single} text | 0.90 | >= 0.7 | PASS |" in text  # the README's goal for /tag
    assert "novel text | 0.70 | none (information) | info |" in text
    assert "| /embed | single | novel | 32 | wrk | 1,200 | 1,200 | n/a | 16.7 | 50.0 |" in text
    assert "| /tag | 2 | 2 | wrk | 1,200 | 13.3 | 40.0 | 1.20 | 1.00 | 0 |" in text
    assert "| spaCy 3.8.0 en_core_web_sm stand-in | 300 | 4,000 | 1.00 | 1.00 |" in text
    assert "| /tag, lists of 32 | 1,000 | 12,000 | 1.20 | 3.00 |" in text
    assert "| server CPU-ms per sentence, one per request | 1.33 | 0.75 |" in text
    assert "| so service / ceiling at most | 0.67 | " in text


def test_a_run_writes_its_json_and_markdown(tmp_path: Path) -> None:
    results = fake_results()
    written = report.write_run(results, summarize(results), tmp_path / "run")
    assert [p.name for p in written] == ["run.json", "run.md"]
    assert json.loads(written[0].read_text())["meta"]["host"] == "test"
    text = written[1].read_text()
    assert "| /tag p99 latency at 8 clients (ms) | 80.00 | <= 50 | FAIL |" in text
    label = "/embed, lists of 32 / all-MiniLM-L6-v2 on ORT (batch 32)"
    assert f"| {label} | n/a | >= 10 | n/a |" in text
    assert "peer: RuntimeError: boom" in text
    assert "| ORT alone, batch 32 / batch 1 | 5.66 | 5.66 |" in text


def test_report_survives_an_empty_run() -> None:
    empty: dict[str, Any] = {"meta": {}, "machine": {}}
    summary = summarize(empty)
    assert all(t["pass"] is None for t in summary["targets"])
    assert "## Targets" in report.markdown(empty, summary)
