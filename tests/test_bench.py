"""The benchmark's pure parts: FLOP counting, batching of the corpus, latency percentiles, and
the report (ratios, targets, Markdown, plots) from a fake results dict; and one tiny A/B run of
two real servers (`bench.ab`)."""

from __future__ import annotations

import asyncio
import json
import pickle
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from app.model.featurize import Features
from bench import ab, report, service, spacy_sm, wrk
from bench.engine import Rate, length_sorted_batches, measure
from bench.load import Connection, make_bodies, run_load, summarize
from bench.plots import plot
from bench.probes import tagpath
from bench.probes.flops import count_flops
from bench.recorded import RecordingBackend, WithBatches
from bench.targets import verdict
from bench.texts import novel_texts

IN, H, N_TAG, D_EMB = 5, 4, 3, 6  # GRU input and hidden sizes, head widths


def _tiny_graph(path: Path) -> None:
    """x (T, B, IN) -> bidirectional GRU -> per-piece MatMul (tag) and mean -> Gemm (embed)."""
    rng = np.random.default_rng(0)

    def weight(name: str, *shape: int) -> onnx.TensorProto:
        return numpy_helper.from_array(rng.standard_normal(shape).astype(np.float32), name)

    nodes = [
        helper.make_node("GRU", ["x", "W", "R"], ["y"], hidden_size=H, direction="bidirectional"),
        helper.make_node("MatMul", ["y", "head"], ["upos_logits"]),  # y (T, 2, B, H)
        helper.make_node("ReduceMean", ["y"], ["pooled"], axes=[0, 1], keepdims=0),  # (B, H)
        helper.make_node("Gemm", ["pooled", "proj"], ["embedding"], transB=1),
    ]
    graph = helper.make_graph(
        nodes,
        "tiny",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["T", "B", IN])],
        [
            helper.make_tensor_value_info("upos_logits", TensorProto.FLOAT, None),
            helper.make_tensor_value_info("embedding", TensorProto.FLOAT, None),
        ],
        [
            weight("W", 2, 3 * H, IN),
            weight("R", 2, 3 * H, H),
            weight("head", H, N_TAG),
            weight("proj", D_EMB, H),
        ],
    )
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))


def test_count_flops_follows_the_documented_formula(tmp_path: Path) -> None:
    _tiny_graph(tmp_path / "tiny.onnx")
    counted = count_flops(tmp_path / "tiny.onnx")
    gru = 2 * 2 * 3 * H * (IN + H)  # two directions
    assert counted["per_path"]["tag"] == {"piece": gru + 2 * H * N_TAG, "sentence": 0}
    assert counted["per_path"]["embed"] == {"piece": gru, "sentence": 2 * D_EMB * H}
    by_op = {n["op"]: n for n in counted["nodes"]}
    assert by_op["GRU"]["paths"] == ["tag", "embed"]
    assert by_op["MatMul"]["paths"] == ["tag"] and by_op["MatMul"]["per"] == "piece"
    assert by_op["Gemm"]["paths"] == ["embed"] and by_op["Gemm"]["per"] == "sentence"


def test_count_flops_on_the_model(model_dir: Path) -> None:
    counted = count_flops(model_dir / "model.onnx")
    tag, embed = counted["per_path"]["tag"], counted["per_path"]["embed"]
    assert tag["piece"] > embed["piece"] > 0 and embed["sentence"] > 0 and tag["sentence"] == 0
    grus = [n for n in counted["nodes"] if n["op"] == "GRU"]
    assert grus and all(len(n["paths"]) == 1 for n in grus)  # the encoders share no GRU


def _features(n: int) -> Features:
    ids = np.arange(1, n + 1, dtype=np.int64)
    return Features(ids, np.ones(n, dtype=np.int64), np.arange(n, dtype=np.int64))


def test_length_sorted_batches_and_rates() -> None:
    batches = length_sorted_batches([_features(n) for n in (5, 1, 3, 2, 4)], 2)
    assert [b["lengths"].tolist() for b in batches] == [[1, 2], [3, 4], [5]]
    assert [b["input_ids"].shape for b in batches] == [(2, 2), (2, 4), (1, 5)]
    rate = measure(lambda feeds: None, batches, seconds=0.0, warmup=0)  # at least one run
    assert rate.runs == 1 and rate.sentences in (1, 2)
    r = Rate()
    r.add(batches[1], 0.5)
    assert r.as_dict()["pieces_per_s"] == 14 and r.padded_pieces == 8


def test_latency_summary() -> None:
    s = summarize([float(v) for v in range(1, 101)])
    assert s["count"] == 100 and s["p50"] == pytest.approx(50.5) and s["max"] == 100
    assert s["p99"] == pytest.approx(99.01)
    assert summarize([])["p99"] is None


def test_connection_reads_sized_and_chunked_responses() -> None:
    """The load client's HTTP/1.1: Content-Length and chunked bodies on one kept-alive socket,
    then a reconnect after `Connection: close`."""
    replies = [
        b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nhello",
        b"HTTP/1.1 422 Unprocessable\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n",
        b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok",
        b"HTTP/1.1 201 Created\r\ncontent-length: 0\r\n\r\n",
    ]
    bodies: list[bytes] = []
    connections = 0

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal connections
        connections += 1
        while replies and (head := await reader.readuntil(b"\r\n\r\n")):
            length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
            bodies.append(await reader.readexactly(length))
            reply = replies.pop(0)
            writer.write(reply)
            if b"close" in reply:
                break
        writer.close()

    async def run() -> list[int]:
        server = await asyncio.start_server(handle, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        conn = Connection(f"http://127.0.0.1:{port}/tag")
        statuses = [await conn.post(b'{"inputs": "%d"}' % i) for i in range(4)]
        conn.close()
        server.close()
        return statuses

    assert asyncio.run(run()) == [200, 422, 200, 201]
    assert bodies == [b'{"inputs": "%d"}' % i for i in range(4)] and connections == 2


def test_load_sends_lists_and_counts_sentences() -> None:
    """`--per-request K`: each body holds K consecutive texts, and sentences are counted K each."""
    bodies: list[dict[str, Any]] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while head := await reader.readuntil(b"\r\n\r\n"):
            length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
            bodies.append(json.loads(await reader.readexactly(length)))
            writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}")

    async def run() -> dict[str, Any]:
        server = await asyncio.start_server(handle, "127.0.0.1", 0)
        url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}/embed"
        texts = ["a", "b", "c", "d", "e"]
        result = await run_load(url, texts, 1, 0.0, 0.3, 50, "raw", per_request=2)
        server.close()
        return result

    result = asyncio.run(run())
    assert bodies[:3] == [{"inputs": ["a", "b"]}, {"inputs": ["c", "d"]}, {"inputs": ["a", "b"]}]
    assert result["sentences_per_s"] == pytest.approx(2 * result["requests_per_s"])


def _service(task: str, batching: str, clients: int, sps: float, p99: float) -> dict[str, Any]:
    return {
        "task": task,
        "batching": batching,
        "clients": clients,
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
            "in_process": {"sentences_per_s": sps * 0.9, "mean_batch_size": 30.0},
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


def test_summary_ratios_and_targets() -> None:
    summary = report.summarize(fake_results())
    targets = {t["key"]: t for t in summary["targets"]}
    assert targets["ceiling_tag"]["value"] == pytest.approx(0.8) and targets["ceiling_tag"]["pass"]
    assert targets["ceiling_embed"]["value"] == pytest.approx(1500 / 1600)
    assert targets["batching_tag"]["value"] == pytest.approx(4.0)
    assert targets["ort_torch_embed"]["value"] == pytest.approx(2.0)
    assert targets["p99_tag_8"]["value"] == 80.0 and targets["p99_tag_8"]["pass"] is False
    assert targets["embed_vs_teacher"]["pass"] is None
    physical = {(r["task"], r["what"]): r for r in summary["physical"]}
    best = physical[("tag", "ORT B=128, 2 threads")]
    assert best["gflops"] == pytest.approx(2000 * 128**0.5 * 4e6 / 1e9)
    assert best["share"] == pytest.approx(best["gflops"] / 100.0)
    tag = summary["bounds"]["tag"]  # no service_settings: 1 worker x 1 thread
    assert tag["server_cpu_ms_per_request"] == pytest.approx(1000 * 1.2 / 800)
    assert tag["ort_cpu_ms_per_sentence"] == pytest.approx(1000 / 1000)
    assert tag["ceiling_share_bound"] == pytest.approx(1.0 / 1.5)
    assert tag["ort_b32_over_b1"] == pytest.approx(32**0.5)
    assert tag["torch_b32_peak_share"] == pytest.approx(1000 * 32**0.5 * 4e6 / 1e9 / 100)
    p99 = summary["bounds"]["p99_tag_8"]
    assert p99["p99_over_mean"] == pytest.approx(3.0)
    assert p99["requests_per_s_needed"] == pytest.approx(8000 / (50 / 3))


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
        "stand_in": {"words_per_s": 4000.0, "sentences_per_s": 300.0, "cores": 1.0},
        "init_config": {"words_per_s": 6000.0, "sentences_per_s": 450.0, "cores": 1.0},
    }
    rows = results["service"]["rows"]
    next(r for r in rows if (r["task"], r["batching"], r["clients"]) == ("tag", "off", 8))[
        "errors"
    ] = 2
    worse = next(r for r in rows if (r["task"], r["batching"], r["clients"]) == ("embed", "on", 1))
    worse["latency_ms"] = worse["latency_ms"] | {"p99": 20.0}  # off: 10 ms
    results["ceiling"]["embed"] |= {"cpu_s": 0.5, "sentences": 1000}  # ORT's CPU, measured
    return results


def test_issue_targets_and_verdicts() -> None:
    """One sentence per request vs lists, batching never costs, front end vs ORT, spaCy."""
    summary = report.summarize(issue_results())
    t = {x["key"]: x for x in summary["targets"]}
    got = {k: (round(x["value"], 3), verdict(x)) for k, x in t.items() if x["value"] is not None}
    assert got["single_lists_tag"] == (0.9, "PASS")
    assert got["single_lists_embed"] == (0.4, "FAIL")
    assert got["single_lists_tag_novel"] == (0.7, "info")
    assert got["single_lists_embed_novel"] == (0.3, "info")  # its errors fail nothing
    assert got["batching_tag_1_rps"] == (4.0, "PASS") and got["batching_tag_1_p99"] == (1, "PASS")
    for q in ("rps", "p50", "p99"):  # the off run at 8 clients had errors
        assert verdict(t[f"batching_tag_8_{q}"]) == "FAIL (errors)"
    assert got["batching_embed_1_p99"] == (2.0, "FAIL")
    assert got["batching_embed_1_p50"] == (1.0, "PASS")
    assert got["batching_tag_128_rps"] == (4.0, "PASS") and t["batching_tag_128_rps"]["op"] == ">"
    assert got["front_ort_tag"] == (0.5, "PASS")  # (1.5 - 1.0) / 1.0: one core busy, 1000/s
    assert got["front_ort_embed"] == (0.6, "PASS")  # (0.8 - 0.5) / 0.5
    assert got["tag_vs_spacy"] == (3.0, "FAIL") and got["tag_vs_spacy_init"] == (2.0, "info")
    b = summary["bounds"]["embed"]
    assert b["lists_cpu_ms_per_sentence"] == pytest.approx(1000 * 1.2 / 4000)
    assert b["single_over_lists_bound"] == pytest.approx((1.2 / 4000) / (1.2 / 1600))


def test_issue_targets_without_their_phases() -> None:
    """A failed single or spaCy phase leaves its targets n/a; a failed service phase, the
    batching and front-end ones."""
    results = issue_results()
    del results["single"], results["spacy"]
    t = {x["key"]: x for x in report.summarize(results)["targets"]}
    for key in ("single_lists_tag", "single_lists_embed_novel", "tag_vs_spacy"):
        assert t[key]["value"] is None and verdict(t[key]) in ("n/a", "info")
    assert t["batching_embed_32_rps"]["pass"] is True
    results["service"] = {}
    t = {x["key"]: x for x in report.summarize(results)["targets"]}
    assert t["batching_embed_32_rps"]["pass"] is None and t["front_ort_tag"]["pass"] is None
    text = report.markdown(results, report.summarize(results), [])
    assert "| /tag front-end CPU per request / ORT CPU per sentence (32 clients) | n/a |" in text


def test_markdown_of_the_issue_phases() -> None:
    results = issue_results()
    text = report.markdown(results, report.summarize(results), [])
    assert (
        "| /tag batching on / off at 8 clients: p99 latency | 1.00 | <= 1.05 | FAIL (errors) |"
        in text
    )
    assert "| /tag lists words/s vs spaCy sm, same run | 3.00 | >= 4 | FAIL |" in text
    assert "novel text | 0.70 | none (information) | info |" in text
    assert "| /embed | single | novel | 32 | wrk | 1,200 | 1,200 | n/a | 16.7 | 50.0 |" in text
    assert "| /tag | 2 | 2 | wrk | 1,200 | 13.3 | 40.0 | 1.20 | 1.00 | 0 |" in text
    assert "Requests/s, 2 processes over 1: /tag 2.00x, /embed 2.00x." in text
    assert "| spaCy stand-in (en_core_web_sm 3.8 components), batch None | 4,000 |" in text
    assert "/tag one sentence per request vs lists: the server spends 1.33 CPU-ms" in text


def test_markdown_and_plots(tmp_path: Path) -> None:
    results = fake_results()
    plots = plot(results, tmp_path / "run")
    assert sorted(p.name for p in plots) == [
        "run-engine.png",
        "run-latency.png",
        "run-throughput.png",
    ]
    assert all(p.stat().st_size > 1000 for p in plots)
    text = report.markdown(results, report.summarize(results), [p.name for p in plots])
    assert "| /tag p99 latency at 8 clients (ms) | 80.00 | <= 50 | FAIL |" in text
    label = "/embed, 32 sentences per request / all-MiniLM-L6-v2 on ORT (batch 32)"
    assert f"| {label} | n/a | >= 10 | n/a |" in text
    assert "peer: RuntimeError: boom" in text and "![run-latency.png](run-latency.png)" in text
    assert "the service reaches at most 0.67 of the ceiling" in text


def test_report_survives_an_empty_run() -> None:
    empty: dict[str, Any] = {"meta": {}, "machine": {}}
    summary = report.summarize(empty)
    assert all(t["pass"] is None for t in summary["targets"])
    assert "## Targets" in report.markdown(empty, summary, [])


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
    """HEAD in a temporary worktree against this checkout, one short round each; the worktree
    is gone afterwards (this run's: other checkouts of the repository may run theirs)."""
    trees: list[Path] = []
    real_worktree = ab.worktree

    @contextmanager
    def worktree(revision: str) -> Iterator[Path]:
        with real_worktree(revision) as tree:
            trees.append(tree)
            yield tree

    monkeypatch.setattr(ab, "worktree", worktree)
    texts = tmp_path / "texts.json"
    texts.write_text(json.dumps(["Alice moved to Paris.", "It rained.", "Bob left early."]))
    out = tmp_path / "ab.json"
    ab.main(["--base", "HEAD", "--rounds", "1", "--seconds", "0.5", "--warmup", "0.2",
             "--clients", "2", "--per-request", "2", "--texts", str(texts),
             "--model-dir", str(model_dir), "--out", str(out),
             "--env", "BIGRU_MAX_WAIT_MS=1"])  # fmt: skip
    result = json.loads(out.read_text())
    for side in ("base", "head"):
        assert result[side]["rounds"] == 1 and result[side]["sentences_per_s"] > 0
    assert result["setup"]["env"] == {"BIGRU_MAX_WAIT_MS": "1"}
    assert result["setup"]["tool"] == ("wrk" if wrk.available() else "python")
    listed = subprocess.run(["git", "-C", str(ab.ROOT), "worktree", "list"], capture_output=True,
                            text=True, check=True).stdout  # fmt: skip
    assert len(trees) == 1 and str(trees[0]) not in listed and not trees[0].exists()


@pytest.mark.slow  # subprocesses
def test_ab_gives_env_to_the_servers(tmp_path: Path, model_dir: Path) -> None:
    """`--env` reaches the servers: one the service rejects stops the first at start-up."""
    texts = tmp_path / "texts.json"
    texts.write_text(json.dumps(["It rained."]))
    with pytest.raises(RuntimeError, match="max_batch_size"):
        ab.main(["--base", "HEAD", "--rounds", "1", "--texts", str(texts), "--tool", "python",
                 "--model-dir", str(model_dir), "--env", "BIGRU_MAX_BATCH_SIZE=0"])  # fmt: skip


class _Answers(BaseHTTPRequestHandler):
    """200 to every POST but those whose input is "x" (429); keeps each input in `received`."""

    protocol_version = "HTTP/1.1"
    received: list[str] = []

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.received.append(body["inputs"])
        status = b"429 Too Many Requests" if body["inputs"] == "x" else b"200 OK"
        self.wfile.write(b"HTTP/1.1 %s\r\nContent-Length: 2\r\n\r\n{}" % status)  # one write

    def log_message(self, *args: Any) -> None:
        pass


@pytest.mark.slow  # wrk
@pytest.mark.skipif(not wrk.available(), reason="wrk is not installed")
def test_wrk_sends_bodies_in_order_and_counts_errors(tmp_path: Path) -> None:
    """A real one-second wrk run with bench/wrk.lua: bodies in file order from the offset,
    cycling; 429s are errors; the rates are wrk's own."""
    bodies = wrk.write_bodies(make_bodies(["a", "b", "x"], 1), tmp_path / "bodies")
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Answers)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    _Answers.received = []
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/tag"
        r = wrk.run(url, bodies, clients=1, seconds=1, offset=1)
    finally:
        server.shutdown()
        server.server_close()
    assert _Answers.received[:4] == ["b", "x", "a", "b"]
    assert r["distinct_bodies"] == 3 and r["requests_sent"] >= len(_Answers.received) > 10
    rejected = r["statuses"]["429"]
    assert r["errors"] == rejected > 0 and r["ok"] + rejected == r["latency_ms"]["count"]
    assert r["requests_per_s"] == pytest.approx(r["ok"] / r["window_s"])
    assert 0 < r["latency_ms"]["p50"] <= r["latency_ms"]["p99"] <= r["latency_ms"]["max"]
    assert r["tool"] == "wrk" and r["client_cpu_s"] >= 0


def test_wrk_parse_of_captured_output() -> None:
    out = (
        "Running 2s test @ http://127.0.0.1:8000/tag\n  1 threads and 4 connections\n"
        'bench-wrk {"duration_us": 2000000, "requests": 98, "sent": 102, "distinct": 50, '
        '"statuses": {"200": 90, "503": 8}, "socket_errors": {"connect": 0, "read": 2, '
        '"write": 0, "timeout": 1}, "latency_us": {"mean": 4100.5, "max": 30000, "p50": 3000, '
        '"p90": 6000, "p95": 8000, "p99": 12500}}\nRequests/sec: 49.00\n'
    )
    r = wrk.parse(out)
    assert r["statuses"] == {"200": 90, "503": 8, "socket read": 2, "socket timeout": 1}
    assert (r["ok"], r["errors"], r["requests_per_s"], r["window_s"]) == (90, 11, 45.0, 2.0)
    assert r["latency_ms"]["p99"] == 12.5 and r["latency_ms"]["count"] == 98
    with pytest.raises(RuntimeError, match="bench-wrk"):
        wrk.parse("Running 2s test\n")


@pytest.mark.slow  # a subprocess
def test_cpu_seconds_counts_the_process_tree() -> None:
    """A parent that only waits on a child that burns 0.3 s of CPU: the child's time is in the
    parent's tree while it runs, and stays there once the parent has reaped it."""
    child = (
        "import sys, time\nt = time.process_time()\nwhile time.process_time() - t < 0.3: pass\n"
        "print('burnt', flush=True)\nsys.stdin.read()"
    )
    parent = (
        f"import subprocess, sys, time\nsubprocess.run([sys.executable, '-c', {child!r}])\n"
        "print('reaped', flush=True)\ntime.sleep(60)"
    )
    proc = subprocess.Popen([sys.executable, "-c", parent], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)  # fmt: skip
    assert proc.stdin is not None and proc.stdout is not None
    try:
        assert proc.stdout.readline().strip() == "burnt"
        tree = service.process_tree(proc.pid)
        assert tree[0] == proc.pid and len(tree) == 2
        child_cpu = service.cpu_seconds(tree[1])
        assert child_cpu is not None and child_cpu >= 0.3
        assert (service.cpu_seconds(proc.pid) or 0) >= child_cpu
        proc.stdin.close()  # the child's read ends; the parent reaps it
        assert proc.stdout.readline().strip() == "reaped"
        assert service.process_tree(proc.pid) == [proc.pid]
        assert (service.cpu_seconds(proc.pid) or 0) >= child_cpu
    finally:
        proc.kill()
        proc.wait()
    assert service.cpu_seconds(proc.pid) is None


def _write_ewt(data: Path) -> None:
    """Tiny EWT dev and train (UD + UNER) files and a sentences.txt."""
    (data / "ud-ewt").mkdir(parents=True)
    (data / "uner-ewt").mkdir()
    (data / "sentences").mkdir()
    train = [("t1", "Alice moved to Paris .", "PROPN VERB ADP PROPN PUNCT", "B-PER O O B-LOC O")]
    train += [("t2", "Train line", "NOUN NOUN", "O O")]
    ud, uner = [], []
    for sid, words, upos, ner in train:
        rows = list(zip(words.split(), upos.split(), ner.split(), strict=True))
        ud.append(f"# sent_id = {sid}\n# text = {words}\n")
        uner.append(f"# sent_id = {sid}\n")
        for i, (w, u, t) in enumerate(rows, 1):
            ud[-1] += f"{i}\t{w}\t_\t{u}\n"
            uner[-1] += f"{i}\t{w}\t{t}\t-\t-\n"
    (data / "ud-ewt" / "en_ewt-ud-train.conllu").write_text("\n".join(ud) + "\n")
    (data / "uner-ewt" / "en_ewt-ud-train.iob2").write_text("\n".join(uner) + "\n")
    dev = "# sent_id = d1\n# text = Hello  World.\n1\tHello\t_\tINTJ\n2\tWorld.\t_\tNOUN\n"
    (data / "ud-ewt" / "en_ewt-ud-dev.conllu").write_text(dev + "\n")
    lines = ["hello world.", "A", "B", "train LINE", "C", "D", "E"]
    (data / "sentences" / "sentences.txt").write_text("\n".join(lines) + "\n")


def test_novel_texts_leave_out_ewt_and_spread_over_the_file(tmp_path: Path) -> None:
    _write_ewt(tmp_path)
    assert novel_texts(tmp_path, 10) == ["A", "B", "C", "D", "E"]
    assert novel_texts(tmp_path, 2) == ["A", "C"]


@pytest.mark.slow  # builds and trains a spaCy pipeline
def test_spacy_stand_in_has_sm_components_and_runs(tmp_path: Path) -> None:
    """The en_core_web_sm stand-in: init config's pipeline with sm's NER tok2vec of its own,
    labels from EWT train, and a measured pass over gold words."""
    _write_ewt(tmp_path)
    base = spacy_sm.init_config()
    assert base["components"]["ner"]["model"]["tok2vec"]["@architectures"] == (
        "spacy.Tok2VecListener.v1"
    )
    nlp = spacy_sm.build(spacy_sm.sm_config(base), tmp_path)
    assert nlp.pipe_names == ["tok2vec", "tagger", "ner"] and nlp.batch_size == 256
    ner_t2v = nlp.config["components"]["ner"]["model"]["tok2vec"]
    assert (ner_t2v["encode"]["width"], ner_t2v["encode"]["depth"]) == (96, 4)
    shared = nlp.config["components"]["tok2vec"]["model"]
    assert shared["embed"]["attrs"][-2:] == ["SPACY", "IS_SPACE"]
    assert (shared["encode"]["width"], shared["encode"]["depth"]) == (96, 4)
    assert spacy_sm.labels(nlp) == {"tagger": 5, "ner": ["LOC", "PER"]}
    rate = spacy_sm.measure(nlp, [["Alice", "moved", "to", "Paris"], ["Hi"]], seconds=0.0)
    assert (rate["passes"], rate["words"], rate["sentences"]) == (1, 5, 2)
    assert rate["words_per_s"] > 0


def test_recorded_answers_bench_batches_in_front_of_the_app(
    tmp_path: Path, model_dir: Path
) -> None:
    """`bench.recorded`: POST /bench/batches hands over (and forgets) the recorded runs; every
    other request goes to the service's app untouched."""
    backend = RecordingBackend(model_dir, ["cpu"], 1)
    backend.runs = [({"input_ids": np.zeros((1, 2), dtype=np.int64)}, ["embedding"])]
    paths: list[str] = []
    sent: list[dict[str, Any]] = []

    async def service_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        paths.append(scope["path"])

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    app = WithBatches(service_app, backend, tmp_path / "batches.pickle")
    for path in ("/bench/batches", "/tag"):
        asyncio.run(app({"type": "http", "method": "POST", "path": path}, None, send))
    assert paths == ["/tag"] and backend.runs == []
    assert sent[0]["status"] == 200 and json.loads(sent[1]["body"]) == {"batches": 1}
    ((feeds, outputs),) = pickle.loads((tmp_path / "batches.pickle").read_bytes())
    assert feeds["input_ids"].shape == (1, 2) and outputs == ["embedding"]


@pytest.mark.slow  # git, and timed runs of two models
def test_tagpath_compares_models_side_by_side(tmp_path: Path) -> None:
    """bench.probes.tagpath on the shipped model twice, once read out of git history: the FLOP count
    and a speed for each, relative to the first."""
    _write_ewt(tmp_path)
    out = tmp_path / "tagpath.json"
    tagpath.main(
        ["head=git:HEAD", f"here={Path(__file__).parent.parent / 'models' / 'bigru-en'}"]
        + ["--data", str(tmp_path)]
        + ["--rounds", "2", "--seconds", "0.05", "--out", str(out)]
    )
    result = json.loads(out.read_text())
    assert list(result) == ["head", "here"]
    assert result["head"]["mflop_per_piece"] == pytest.approx(result["here"]["mflop_per_piece"])
    assert result["head"]["speed_vs_head"] == 1.0
    assert all(len(row["rounds"]) == 2 and row["pieces_per_s"] > 0 for row in result.values())
