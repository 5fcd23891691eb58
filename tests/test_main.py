"""app.main: `create_app`'s lifespan (the engine ready once warm, the memory budget sized, all
stopped at shutdown), `run`'s refusal of bad settings, and the real server, `python -m app`
(app/__main__.py, which only calls `run`) under uvicorn over TCP: SIGTERM drains and exits 0,
several processes share a port and their metrics."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx
import pytest

from app import main
from app.config import Settings
from app.core.admission import MiB
from app.core.errors import NotReadyError
from app.model.backend import OnnxBackend
from tests.helpers import metric, start_server


@pytest.mark.anyio
async def test_the_app_is_ready_once_warm_with_its_memory_budget_and_stops_its_work(
    model_dir: Path, make_settings: Callable[..., Settings], serve: Callable[..., Any]
) -> None:
    settings = make_settings(
        processes=1,
        workers=1,
        memory_limit_mb=4096,
        memory_target=0.5,
        max_batch_size=4,
        max_batch_tokens=256,
        max_tokens_per_input=16,
    )
    app = main.create_app(settings, {"bigru-en": OnnxBackend(model_dir, ["cpu"], 1)})
    assert app.state.models is None
    async with serve(app) as client:
        assert (await client.get("/health")).status_code == 200
        engine = app.state.models.default
        assert engine.batcher.workers == 1
        sizing = app.state.memory_sizing
        assert (sizing.limit, sizing.processes, sizing.target) == (4096 * MiB, 1, 0.5)
        assert sizing.supervisor == 0 and sizing.idle > 0  # the peak held, warmed up
        assert sizing.budget is not None and app.state.memory_budget.budget == sizing.budget
    assert app.state.models is None
    with pytest.raises(NotReadyError):  # the batcher has stopped
        engine.batcher.submit("tag", [])


def test_a_model_folder_that_fails_stops_the_server_with_one_line(
    model_copy: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    repository = tmp_path / "models"
    repository.mkdir()
    (repository / "good").symlink_to(model_copy)
    (repository / "broken").mkdir()  # no model in it
    monkeypatch.setenv("BIGRU_MODELS_DIR", str(repository))
    with pytest.raises(SystemExit) as stopped:
        main.run()
    message = str(stopped.value.code)
    assert message.startswith("bigru-serve: cannot load the model: ") and "\n" not in message
    assert f"model folder {repository / 'broken'}: " in message and "not found" in message


def test_bad_settings_exit_with_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BIGRU_MAX_BATCH_SIZE", "0")
    monkeypatch.setenv("BIGRU_PROVIDERS", "tpu")
    with pytest.raises(SystemExit) as stopped:
        main.run()
    message = str(stopped.value.code)
    assert message.startswith("bigru-serve: bad settings: ") and "\n" not in message
    assert "max_batch_size" in message and "unknown providers ['tpu']" in message


@pytest.mark.slow
def test_serves_health_then_tag(model_dir: Path, tmp_path: Path) -> None:
    server = start_server(model_dir, tmp_path / "server.log")
    try:
        body, trace = {"inputs": "Alice lives in Paris."}, {"X-Request-ID": "trace-42"}
        r = httpx.post(f"{server.base}/tag", json=body, headers=trace, timeout=10)
        assert r.status_code == 200
        assert [t["text"] for t in r.json()[0]["tokens"]] == ["Alice", "lives", "in", "Paris", "."]
        assert r.headers["x-request-id"] == "trace-42"
    finally:
        status = server.stop()
    stderr = server.log.read_text()
    assert status == 0, stderr  # a stop on SIGTERM is a success (app.main._Config)
    # every server process (BIGRU_PROCESSES=auto: one per usable CPU) finished its shutdown, its
    # last lines written rather than lost with a process killed by its own SIGTERM
    started = stderr.count("Waiting for application startup.")
    assert started >= 1 and stderr.count("Application shutdown complete.") == started, stderr
    records = server.records()  # every line one JSON object
    assert {"time", "level", "logger", "request_id", "message"} <= records[0].keys()
    tagged = [r for r in records if r["request_id"] == "trace-42"]
    assert [r["message"].split()[:3] for r in tagged] == [["POST", "/tag", "200"]]


LONG = " ".join(["Alice Smith moved from Paris to the Acme offices in Berlin last year."] * 14)


@pytest.mark.slow
def test_sigterm_lets_in_flight_requests_finish_then_exits_0(
    model_dir: Path, tmp_path: Path
) -> None:
    """What an orchestrator's stop does: SIGTERM while requests are being tagged."""
    requests, inputs, timeout = 4, 32, 30.0
    batch, workers = 4, 2
    server = start_server(
        model_dir,
        tmp_path / "server.log",
        BIGRU_SHUTDOWN_TIMEOUT=str(timeout),
        BIGRU_MAX_BATCH_SIZE=str(batch),  # many small ORT runs: the requests last a few seconds
        BIGRU_PROCESSES="1",  # one queue, so the counts below say what is still waiting in it
        BIGRU_WORKERS=str(workers),
    )
    base, proc = server.base, server.proc
    results: dict[int, object] = {}

    def post(i: int) -> None:
        try:
            r = httpx.post(f"{base}/tag", json={"inputs": [LONG] * inputs}, timeout=120)
            results[i] = (r.status_code, r.json(), time.monotonic())
        except Exception as e:  # reported by the asserts below
            results[i] = e

    try:
        done_before = metric(base, "bigru_batch_size_sum")  # sentences through ORT so far
        threads = [threading.Thread(target=post, args=(i,)) for i in range(requests)]
        for t in threads:
            t.start()
        # SIGTERM once every request is in (a request not yet queued would leave all its
        # `inputs` sentences out of done + queued; the few batches being run are missing from
        # both counts, hence the slack of half a request) while two rounds of batches still
        # wait in the queue, so at least one request cannot have finished.
        deadline = time.monotonic() + 30
        while True:
            done = metric(base, "bigru_batch_size_sum") - done_before
            queued = metric(base, "bigru_queue_size")
            if done + queued >= requests * inputs - inputs // 2 and queued >= 2 * batch * workers:
                break
            assert time.monotonic() < deadline, "never saw every request in with work still queued"
            time.sleep(0.01)
        sigterm_at = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        status = proc.wait(timeout=timeout + 15)
        exited_after = time.monotonic() - sigterm_at
        for t in threads:
            t.join(timeout=10)
    finally:
        server.stop()

    stderr = server.log.read_text()
    assert status == 0, stderr
    assert exited_after < timeout, exited_after
    assert "timeout graceful shutdown exceeded" not in stderr
    assert "Application shutdown complete." in stderr
    finished_after_sigterm = 0
    for i in range(requests):
        result = results[i]
        assert isinstance(result, tuple), result
        status, body, finished_at = result
        assert status == 200, body
        assert len(body) == inputs and all(len(s["tokens"]) == 14 * 14 for s in body)
        finished_after_sigterm += finished_at > sigterm_at
    assert finished_after_sigterm, "every request had finished before SIGTERM: nothing drained"


def test_the_server_runs_numpys_blas_on_one_thread() -> None:
    """OpenBLAS's thread per core would spin beside the workers after every small product the
    parser makes; `python -m app` starts it with one (here up to its settings check, which
    stops it before it serves)."""
    probe = (
        "import ctypes, runpy\n"
        "try:\n    runpy.run_module('app', run_name='__main__')\n"
        "except SystemExit:\n    pass\n"
        "lib = next(l.split()[-1] for l in open('/proc/self/maps') if 'openblas' in l.lower())\n"
        "blas = ctypes.CDLL(lib)\n"
        "names = ('scipy_openblas_get_num_threads64_', 'openblas_get_num_threads')\n"
        "print(next(getattr(blas, n)() for n in names if hasattr(blas, n)))\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "OPENBLAS_NUM_THREADS"}
    env["BIGRU_MAX_BATCH_SIZE"] = "0"  # a bad setting: run() exits before it loads a model
    done = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True)
    assert done.stdout.strip() == "1", done.stderr


def test_uvicorn_runs_on_its_c_parser_and_libuv_loop() -> None:
    """httptools and uvloop are runtime dependencies: without them uvicorn silently falls back
    to pure-Python h11 and asyncio's loop, measurably slower per request."""
    import importlib.util

    import uvicorn

    config = uvicorn.Config(lambda scope, receive, send: None)  # http="auto", loop="auto"
    config.load()
    assert config.http_protocol_class.__name__ == "HttpToolsProtocol"
    assert importlib.util.find_spec("uvloop"), "loop='auto' would fall back to asyncio"


def burst_of_requests(base: str, connections: int) -> list[str]:
    """The request ids of a GET /health on each of `connections` connections, all opened before
    any request is sent."""
    port = int(base.rsplit(":", 1)[1])
    with ExitStack() as stack:
        socks = [
            stack.enter_context(socket.create_connection(("127.0.0.1", port), timeout=10))
            for _ in range(connections)
        ]
        for sock in socks:
            sock.sendall(b"GET /health HTTP/1.1\r\nHost: test\r\n\r\n")
        ids = []
        for sock in socks:
            head = b""
            while b"\r\n\r\n" not in head:
                chunk = sock.recv(4096)
                assert chunk, "the connection closed before the answer's headers"
                head += chunk
            [found] = re.findall(rb"(?im)^x-request-id: *(\S+)", head)
            ids.append(found.decode())
    return ids


@pytest.mark.slow
def test_two_processes_share_the_port_and_their_metrics(model_dir: Path, tmp_path: Path) -> None:
    """BIGRU_PROCESSES=2: both processes answer on one port and share new connections,
    /metrics (from either) counts every request of both, and SIGTERM stops them all with exit
    status 0."""
    metrics_dir = tmp_path / "metrics"
    metrics_dir.mkdir()
    server = start_server(
        model_dir,
        tmp_path / "server.log",
        BIGRU_PROCESSES="2",
        PROMETHEUS_MULTIPROC_DIR=str(metrics_dir),
    )
    base = server.base
    try:
        prefixes: set[str] = set()  # a request id starts with its process's own prefix
        sent = 0
        deadline = time.monotonic() + 30
        while len(prefixes) < 2:
            assert time.monotonic() < deadline, f"one process answered everything: {prefixes}"
            with httpx.Client(base_url=base, timeout=10) as client:  # a new connection each
                r = client.post("/embed", json={"inputs": f"Sentence number {sent}."})
            assert r.status_code == 200
            prefixes.add(r.headers["x-request-id"].rsplit("-", 1)[0])
            sent += 1
        assert metric(base, 'bigru_requests_total{route="/embed",status="200"}') == sent
        assert len(list(metrics_dir.glob("counter_*.db"))) >= 2  # one file per process
        # 32 connections opened at once, as a pool's: both processes take a share (a socket
        # each, app.processes); fewer than 4 on one would happen about twice in a million runs
        shares = Counter(prefix.rsplit("-", 1)[0] for prefix in burst_of_requests(base, 32))
        assert len(shares) == 2 and min(shares.values()) >= 4, shares
    finally:
        status = server.stop()
    assert status == 0
