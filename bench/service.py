"""The service over HTTP: a real `python -m app` (uvicorn) on a loopback port, loaded from
another process (bench/load.py); the server's CPU time (its whole process tree) and its
/metrics (batch sizes, seconds inside ORT) are read before and after each run.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from bench import load

ROOT = Path(__file__).resolve().parent.parent
ROUTES = {"tag": "/tag", "embed": "/embed"}
_METRICS = ("batch_size_sum", "batch_size_count", "batch_tokens_sum", "inference_seconds_sum")


@contextmanager
def server(
    model_dir: Path, env: dict[str, str], log_path: Path, module: str = "app", cwd: Path = ROOT
) -> Iterator[tuple[str, int]]:
    """`python -m <module>` on a free loopback port; yields (base URL, pid); SIGTERM at exit.
    `module` is the service (`app`) or the same service recording its batches; `cwd` the
    source tree it is imported from (another revision's, for `bench.ab`)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    full_env = {**os.environ, "HOST": "127.0.0.1", "PORT": str(port)}
    full_env |= {"BIGRU_MODEL_DIR": str(model_dir), **env}
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
        fields = stat_fields(stat)
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
        fields = stat_fields(Path(f"/proc/{p}/stat"))
        if fields is not None:
            found = True
            total += sum(int(v) for v in fields[11:15])  # utime, stime, cutime, cstime
    return total / os.sysconf("SC_CLK_TCK") if found else None


def rss_mb(pid: int) -> float:
    """One process's resident memory in MiB (0 once it is gone)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def stat_fields(stat: Path) -> list[str] | None:
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
    texts: list[str],
    warmup: float,
    seconds: float,
    per_request: int = 1,
) -> dict[str, Any]:
    """One closed-loop run against a started server, with the server's CPU (its process tree,
    in cores) and its /metrics deltas (ORT runs, batch sizes, time in ORT) over the run."""
    facts: dict[str, Any] = {}

    @contextmanager
    def around() -> Iterator[None]:
        before, cpu0 = scrape(base), cpu_seconds(pid)
        yield
        after, cpu1 = scrape(base), cpu_seconds(pid)
        facts.update({k: after[k] - before[k] for k in _METRICS})
        facts["cpu_s"] = cpu1 - cpu0 if cpu0 is not None and cpu1 is not None else None

    result = load.run(base + ROUTES[task], texts, clients, warmup, seconds, per_request, around)
    runs, wall = max(facts["batch_size_count"], 1), result["wall_s"]
    result["server"] = {
        "ort_runs": facts["batch_size_count"],
        "mean_batch_size": facts["batch_size_sum"] / runs,
        "mean_padded_pieces": facts["batch_tokens_sum"] / runs,
        "ort_busy": facts["inference_seconds_sum"] / wall,  # share of the wall time in ORT
        "cpu": facts["cpu_s"] / wall if facts["cpu_s"] is not None else None,
    }
    result["server_processes"] = len(process_tree(pid))
    return result
