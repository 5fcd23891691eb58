"""The service over HTTP: `python -m app` on a loopback port, with its CPU and /metrics read
around each load run."""

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
from typing import Any, NamedTuple

import httpx

from bench import ROOT, load
from bench.report import log

ROUTES = {"tag": "/tag", "embed": "/embed"}
_METRICS = ("batch_size_sum", "batch_size_count", "inference_seconds_sum")
_TICK_S = 1 / os.sysconf("SC_CLK_TCK")
_READY = re.compile(r" app\.main \[-\] ready\b")  # a server process's line once it serves


class Server(NamedTuple):
    base: str  # http://127.0.0.1:PORT
    pid: int

    def load(self, task: str, clients: int, texts: list[str], window: tuple[float, float],
             per: int = 1, extra: dict | None = None) -> dict[str, Any]:  # fmt: skip
        """One closed-loop run (bench.load.run), logged, and the server's CPU (in cores) and
        /metrics deltas (batch sizes, time in ORT) over its measured part."""
        facts: dict[str, Any] = {}

        @contextmanager
        def around() -> Iterator[None]:
            before, cpu0 = scrape(self.base), cpu_seconds(self.pid)
            yield
            after, cpu1 = scrape(self.base), cpu_seconds(self.pid)
            facts.update({k: after[k] - before[k] for k in _METRICS})
            facts["cpu_s"] = None if cpu0 is None or cpu1 is None else cpu1 - cpu0

        result = load.run(self.base + ROUTES[task], texts, clients, window, per, around, extra)
        wall = result["wall_s"]
        result["server"] = {
            "mean_batch_size": facts["batch_size_sum"] / max(facts["batch_size_count"], 1),
            "ort_busy": facts["inference_seconds_sum"] / wall,  # share of the wall time in ORT
            "cpu": None if facts["cpu_s"] is None else facts["cpu_s"] / wall,
        }
        lat, srv = result["latency_ms"], result["server"]
        log("load", f"/{task:5} {clients:>3} x {per:<2} {result['requests_per_s']:>7,.0f} req/s "
            f"{result['sentences_per_s']:>7,.0f} sent/s p50 {lat['p50'] or 0:6.1f} p99 "
            f"{lat['p99'] or 0:6.1f} ms, batch {srv['mean_batch_size']:5.1f}, server CPU "
            f"{srv['cpu'] or 0:.2f}, errors {result['errors']} ({result['tool']})")  # fmt: skip
        return result | {"server_processes": len(process_tree(self.pid))}


@contextmanager
def server(
    model_dir: Path, env: dict[str, str], log_path: Path, module: str = "app", cwd: Path = ROOT
) -> Iterator[Server]:
    """`python -m <module>` (the service, or `bench.costs`: with instruments) on a free loopback
    port, from the source tree `cwd` (another revision's, for `bench.ab`), once every server
    process is ready; SIGTERM at exit."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "HOST": "127.0.0.1", "PORT": str(port),
           "BIGRU_MODEL_DIR": str(model_dir), **env}  # fmt: skip
    with log_path.open("w") as log:  # a pipe nobody reads would fill up and stall the server
        proc = subprocess.Popen([sys.executable, "-m", module], cwd=cwd, env=env, stdout=log,
                                stderr=log)  # fmt: skip
    base, deadline = f"http://127.0.0.1:{port}", time.monotonic() + 120
    try:
        while not _healthy(base):
            _next_poll(proc, deadline, log_path)
        info = httpx.get(f"{base}/info", timeout=10, trust_env=False).json()
        while not _every_process_ready(info.get("processes", 1), log_path):
            _next_poll(proc, deadline, log_path)
        yield Server(base, proc.pid)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _healthy(base: str) -> bool:
    try:
        return httpx.get(f"{base}/health", timeout=2, trust_env=False).status_code == 200
    except httpx.TransportError:
        return False


def _next_poll(proc: subprocess.Popen[bytes], deadline: float, log_path: Path) -> None:
    """A pause before the next poll; RuntimeError, with the log's end, if the server died or
    the deadline passed."""
    if proc.poll() is not None or time.monotonic() > deadline:
        raise RuntimeError(f"server not up: {log_path.read_text()[-2000:]}")
    time.sleep(0.2)


def _every_process_ready(processes: int, log_path: Path) -> bool:
    """Whether each of the server's `processes` (/info's) has logged that it is ready. /health
    is answered by any one that is: a load begun then opens its keep-alive connections to those
    alone, and they would serve it all the run."""
    return len(_READY.findall(log_path.read_text(errors="replace"))) >= processes


def scrape(base: str) -> dict[str, float]:
    """The batcher's cumulative counters from /metrics."""
    text = httpx.get(f"{base}/metrics", timeout=10, trust_env=False).text
    return {  # summed over the series' labels (model, task)
        name: sum(float(v) for v in re.findall(rf"^bigru_{name}(?:{{[^}}]*}})? (\S+)$", text, re.M))
        for name in _METRICS
    }


def ask(pid: int, out: Path, timeout_s: float = 60) -> bytes:
    """What `bench.costs` writes to `out` on SIGUSR1: the file is removed, the signal sent, and
    the new file read once it is there."""
    out.unlink(missing_ok=True)
    os.kill(pid, signal.SIGUSR1)
    deadline = time.monotonic() + timeout_s
    while not out.is_file():
        if time.monotonic() > deadline:
            raise RuntimeError(f"process {pid} wrote no {out.name} in {timeout_s:.0f} s")
        time.sleep(0.01)
    return out.read_bytes()


def answer(out: Path, data: bytes) -> None:
    """The instrumented server's side of `ask`: `data` to `out` whole (aside, then renamed)."""
    out.with_suffix(".tmp").write_bytes(data)
    out.with_suffix(".tmp").replace(out)


def process_tree(pid: int) -> list[int]:
    """`pid` and all its descendants, from the parent ids in /proc (just `pid` without /proc)."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        if (fields := stat_fields(stat)) is not None:
            children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    tree, todo = [], [pid]
    while todo:
        tree.append(todo.pop())
        todo += children.get(tree[-1], [])
    return tree


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU seconds so far of a process tree: `pid`, its descendants, and the
    children they reaped (a worker that exits mid-run still counts); None without /proc."""
    found = [f for p in process_tree(pid) if (f := stat_fields(Path(f"/proc/{p}/stat")))]
    ticks = sum(int(v) for f in found for v in f[11:15])  # utime, stime, cutime, cstime
    return ticks * _TICK_S if found else None


def thread_cpu_seconds(tid: int | None) -> float:
    """One thread of this process: its user + system CPU seconds (0 once it is gone)."""
    fields = stat_fields(Path(f"/proc/self/task/{tid}/stat"))
    return 0.0 if fields is None else (int(fields[11]) + int(fields[12])) * _TICK_S


def rss_mb(pid: int) -> float:
    """One process's resident memory in MiB (0 once it is gone)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text().splitlines()
    except OSError:
        return 0.0
    return next((int(x.split()[1]) / 1024 for x in status if x.startswith("VmRSS:")), 0.0)


def stat_fields(stat: Path) -> list[str] | None:
    """/proc/<pid>/stat after the command name (field 3 on), None if the process is gone."""
    try:
        return stat.read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
