"""The service over HTTP: a real `python -m app` (uvicorn) on a loopback port, loaded by `wrk`
or `bench.load` in another process; the server's CPU time (its whole process tree) and its
/metrics (batch sizes, seconds inside ORT) are read before and after each run.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from bench import wrk
from bench.load import make_bodies

ROOT = Path(__file__).resolve().parent.parent
ROUTES = {"tag": "/tag", "embed": "/embed"}
_METRICS = ("batch_size_sum", "batch_size_count", "batch_tokens_sum", "inference_seconds_sum")


@contextmanager
def server(
    model_dir: Path, env: dict[str, str], log_path: Path, module: str = "app", cwd: Path = ROOT
) -> Iterator[tuple[str, int]]:
    """Start `python -m <module>` on a free loopback port; yields (base URL, pid); SIGTERM at
    exit. `module` is the service (`app`) or the same service recording its batches; `cwd` the
    source tree it is imported from (another revision's, for `bench.ab`)."""
    port = _free_port()
    full_env = {
        **os.environ,
        "HOST": "127.0.0.1",
        "PORT": str(port),
        "BIGRU_MODEL_DIR": str(model_dir),
        **env,
    }
    # the log goes to a file: a pipe nobody reads would fill up and stall the server
    with log_path.open("w") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", module], cwd=cwd, env=full_env, stdout=log, stderr=log
        )
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_healthy(base, proc, log_path)
        yield base, proc.pid
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_healthy(base: str, proc: subprocess.Popen[bytes], log_path: Path) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited: {log_path.read_text()[-2000:]}")
        try:
            if httpx.get(f"{base}/health", timeout=2, trust_env=False).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise RuntimeError("server did not become healthy in 120 s")


def scrape(base: str) -> dict[str, float]:
    """The batcher's cumulative counters from /metrics."""
    text = httpx.get(f"{base}/metrics", timeout=10, trust_env=False).text
    out = {}
    for name in _METRICS:
        match = re.search(rf"^bigru_{name} (\S+)$", text, re.M)
        out[name] = float(match.group(1)) if match else 0.0
    return out


def process_tree(pid: int) -> list[int]:
    """`pid` and all its descendants, from the parent ids in /proc (just `pid` without /proc)."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        fields = _stat_fields(stat)
        if fields is not None:
            children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    tree, todo = [], [pid]
    while todo:
        tree.append(todo.pop())
        todo += children.get(tree[-1], [])
    return tree


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU seconds so far of a process tree: `pid`, its descendants, and the
    children they have reaped (so a worker that exits mid-run still counts); None without
    /proc. The server may run several processes (`BIGRU_PROCESSES`)."""
    total, found = 0, False
    for p in process_tree(pid):
        fields = _stat_fields(Path(f"/proc/{p}/stat"))
        if fields is not None:
            found = True
            total += sum(int(v) for v in fields[11:15])  # utime, stime, cutime, cstime
    return total / os.sysconf("SC_CLK_TCK") if found else None


def _stat_fields(stat: Path) -> list[str] | None:
    """/proc/<pid>/stat after the command name (field 3 on), None if the process is gone."""
    try:
        return stat.read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None


def load_run(
    base: str,
    pid: int,
    task: str,
    clients: int,
    texts: Path,
    warmup: float,
    seconds: float,
    tool: str = "raw",
    per_request: int = 1,
) -> dict[str, Any]:
    """One closed-loop run against a started server: `wrk` or `bench.load` (tool `raw` or
    `httpx`), each in its own process, with server-side facts over the run."""
    url = base + ROUTES[task]
    if tool != "wrk":
        result = _with_server_facts(
            base, pid, lambda: _python_load(url, clients, texts, warmup, seconds, tool, per_request)
        )
        result["client_cpu"] = result["client_cpu_s"] / result["wall_s"]
        return result
    texts_list = json.loads(texts.read_text(encoding="utf-8"))
    with tempfile.TemporaryDirectory(prefix="bigru-wrk-") as tmp:
        bodies = wrk.write_bodies(make_bodies(texts_list, per_request), Path(tmp) / "bodies")
        offset = 0
        if round(warmup) > 0:  # whole seconds only: a sub-second warm-up is left out
            offset = wrk.run(url, bodies, clients, warmup)["requests_sent"]
        result = _with_server_facts(
            base, pid, lambda: wrk.run(url, bodies, clients, seconds, offset)
        )
    result |= {
        "requests_sent": offset + result["requests_sent"],  # warm-up included, as bench.load's
        "per_request": per_request,
        "warmup_s": warmup,
        "sentences_per_s": result["requests_per_s"] * per_request,
        "client_cpu": result["client_cpu_s"] / result["wall_s"],
    }
    return result


def _python_load(
    url: str,
    clients: int,
    texts: Path,
    warmup: float,
    seconds: float,
    tool: str,
    per_request: int,
) -> dict[str, Any]:
    cmd = [sys.executable, "-m", "bench.load", "--url", url, "--texts", str(texts)]
    cmd += ["--clients", str(clients), "--warmup", str(warmup), "--seconds", str(seconds)]
    cmd += ["--tool", tool, "--per-request", str(per_request)]
    done = subprocess.run(
        cmd, cwd=ROOT, capture_output=True, text=True, timeout=warmup + seconds + 120, check=True
    )
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def _with_server_facts(
    base: str, pid: int, measure: Callable[[], dict[str, Any]]
) -> dict[str, Any]:
    """`measure()`'s result with the server's CPU (its process tree, in cores) and its
    /metrics deltas (ORT runs, batch sizes, time in ORT) over the run's wall time."""
    before, cpu0 = scrape(base), cpu_seconds(pid)
    result = measure()
    after, cpu1 = scrape(base), cpu_seconds(pid)
    d = {k: after[k] - before[k] for k in _METRICS}
    runs = max(d["batch_size_count"], 1)
    wall = result["wall_s"]
    result["server"] = {
        "ort_runs": d["batch_size_count"],
        "mean_batch_size": d["batch_size_sum"] / runs,
        "mean_padded_pieces": d["batch_tokens_sum"] / runs,
        "ort_busy": d["inference_seconds_sum"] / wall,  # share of the run's wall time in ORT
        "cpu": (cpu1 - cpu0) / wall if cpu0 is not None and cpu1 is not None else None,
    }
    result["server_processes"] = len(process_tree(pid))
    return result
