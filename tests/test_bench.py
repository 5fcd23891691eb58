"""The benchmark's pure parts: FLOP counting, batching of the corpus, latency percentiles, and
the report (ratios, targets, Markdown, plots) from a fake results dict; and one tiny A/B run of
two real servers (`bench.ab`)."""

from __future__ import annotations

import asyncio
import json
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from app.featurize import Features
from bench import ab, report
from bench.engine import Rate, length_sorted_batches, measure
from bench.flops import count_flops
from bench.load import Connection, run_load, summarize
from bench.plots import plot

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


def test_ab_runs_both_sides_in_turn(tmp_path: Path, model_dir: Path) -> None:
    """HEAD in a temporary worktree against this checkout, one short round each; the worktree
    is gone afterwards."""
    texts = tmp_path / "texts.json"
    texts.write_text(json.dumps(["Alice moved to Paris.", "It rained.", "Bob left early."]))
    out = tmp_path / "ab.json"
    ab.main(["--base", "HEAD", "--rounds", "1", "--seconds", "0.5", "--warmup", "0.2",
             "--clients", "2", "--per-request", "2", "--texts", str(texts),
             "--model-dir", str(model_dir), "--out", str(out)])  # fmt: skip
    result = json.loads(out.read_text())
    for side in ("base", "head"):
        assert result[side]["rounds"] == 1 and result[side]["sentences_per_s"] > 0
    listed = subprocess.run(["git", "-C", str(ab.ROOT), "worktree", "list"], capture_output=True,
                            text=True, check=True).stdout  # fmt: skip
    assert "bigru-ab-" not in listed
