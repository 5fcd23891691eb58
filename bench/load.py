"""Closed-loop HTTP load, the one load tool: wrk where installed, else a stdlib asyncio client
in this process (bench/README.md)."""

import asyncio
import itertools
import json
import resource
import shutil
import subprocess
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import numpy as np

from bench import ROOT

QUANTILES = {"p50": 50, "p90": 90, "p95": 95, "p99": 99}
WRK_SCRIPT = ROOT / "bench" / "wrk.lua"
WRK_MARK = "bench-wrk "
Around = Callable[[], AbstractContextManager[object]]
WRK_TIMEOUT_S = 60  # wrk's own per-request timeout (2 s by default) would cut a slow queue short


def wrk_available() -> bool:
    return shutil.which("wrk") is not None


def make_bodies(texts: list[str], per_request: int, extra: dict | None = None) -> list[bytes]:
    """JSON request bodies: one text each, or `per_request` consecutive texts each (a short
    last group is left out, so every request carries exactly `per_request`); `extra`'s fields
    (e.g. `heads`) in each."""
    extra = extra or {}
    if per_request == 1:
        return [json.dumps({"inputs": t, **extra}).encode() for t in texts]
    groups = [texts[i : i + per_request] for i in range(0, len(texts), per_request)]
    return [json.dumps({"inputs": g, **extra}).encode() for g in groups if len(g) == per_request]


def summarize(latencies_ms: list[float]) -> dict[str, float | int | None]:
    """Count, mean, max and p50/p90/p95/p99 (linear interpolation) of latencies in ms."""
    if not latencies_ms:
        return {"count": 0, "mean": None, "max": None, **dict.fromkeys(QUANTILES)}
    v = np.asarray(latencies_ms, dtype=np.float64)
    quantiles = {name: float(np.percentile(v, q)) for name, q in QUANTILES.items()}
    return {"count": len(v), "mean": float(v.mean()), "max": float(v.max()), **quantiles}


def run(url: str, texts: list[str], clients: int, window: tuple[float, float], per: int,
        around: Around, extra: dict | None = None) -> dict[str, Any]:  # fmt: skip
    """One closed-loop run for `window` (warm-up, measured seconds); `around()` wraps what
    `wall_s` covers: wrk's measured run, or the whole fallback."""
    warmup, seconds = window
    bodies = make_bodies(texts, per, extra)
    if wrk_available():
        with tempfile.TemporaryDirectory(prefix="bigru-wrk-") as tmp:
            path = Path(tmp) / "bodies"
            path.write_bytes(b"\n".join(bodies) + b"\n")  # JSON strings escape their newlines
            offset = 0
            if round(warmup) > 0:  # whole seconds only: a sub-second warm-up is left out
                offset = run_wrk(url, path, clients, warmup)["requests_sent"]
            with around():
                result = run_wrk(url, path, clients, seconds, offset)
        result["requests_sent"] += offset  # the warm-up's included, as the fallback counts them
    else:
        with around():
            result = asyncio.run(run_fallback(url, bodies, clients, warmup, seconds))
    result |= {"per_request": per, "warmup_s": warmup}
    result["sentences_per_s"] = result["requests_per_s"] * per
    result["client_cpu"] = result["client_cpu_s"] / result["wall_s"]
    return result


def run_wrk(url: str, bodies: Path, clients: int, seconds: float, offset: int = 0) -> dict:
    """`clients` connections for about `seconds` (whole seconds), from body `offset`."""
    cmd = ["wrk", "-t1", f"-c{clients}", f"-d{max(1, round(seconds))}s"]
    cmd += [f"--timeout={WRK_TIMEOUT_S}s", "-s", str(WRK_SCRIPT), url, "--", str(bodies)]
    before = _cpu(resource.RUSAGE_CHILDREN)
    done = subprocess.run([*cmd, str(offset)], capture_output=True, text=True,
                          timeout=seconds + WRK_TIMEOUT_S + 30, check=True)  # fmt: skip
    result = parse_wrk(done.stdout)
    result["client_cpu_s"] = _cpu(resource.RUSAGE_CHILDREN) - before  # wrk's, once exited
    return result | {"url": url, "clients": clients, "offset": offset}


def parse_wrk(stdout: str) -> dict[str, Any]:
    """wrk.lua's line -> the result fields (rates per second of wrk's own run)."""
    line = next((x for x in stdout.splitlines() if x.startswith(WRK_MARK)), None)
    if line is None:
        raise RuntimeError(f"wrk printed no {WRK_MARK.strip()!r} line: {stdout[-2000:]}")
    raw = json.loads(line[len(WRK_MARK) :])
    window = raw["duration_us"] / 1e6
    statuses = {str(k): v for k, v in raw["statuses"].items()}
    statuses |= {f"socket {k}": v for k, v in raw["socket_errors"].items() if v}
    latency = {"count": raw["requests"]} | {k: v / 1000 for k, v in raw["latency_us"].items()}
    return _result("wrk", window, window, raw["sent"], raw["distinct"], statuses) | {
        "latency_ms": latency
    }


def _result(
    tool: str, window: float, wall: float, sent: int, distinct: int, statuses: dict[str, int]
) -> dict[str, Any]:
    ok = sum(v for k, v in statuses.items() if k.isdigit() and 200 <= int(k) < 300)
    return {"tool": tool, "window_s": window, "wall_s": wall, "requests_sent": sent,
            "distinct_bodies": distinct, "statuses": statuses, "ok": ok,
            "errors": sum(statuses.values()) - ok,
            "requests_per_s": ok / window if window else 0.0}  # fmt: skip


class Connection:
    """One keep-alive HTTP/1.1 connection that POSTs JSON bodies."""

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 80
        self.head = (
            f"POST {parts.path or '/'} HTTP/1.1\r\nHost: {parts.netloc}\r\n"
            "Content-Type: application/json\r\nContent-Length: "
        ).encode()
        self.streams: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None

    async def post(self, body: bytes) -> int:
        """Send one request and read its whole response; returns the status code."""
        if self.streams is None:
            self.streams = await asyncio.open_connection(self.host, self.port)
        reader, writer = self.streams
        writer.write(self.head + b"%d\r\n\r\n" % len(body) + body)
        if not (status_line := await reader.readline()):
            raise ConnectionResetError("the server closed the connection")
        headers = {}
        while (line := await reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.partition(b":")
            headers[name.strip().lower()] = value.strip().lower()
        if headers.get(b"transfer-encoding") == b"chunked":
            while size := int((await reader.readline()).split(b";")[0], 16):
                await reader.readexactly(size + 2)
            await reader.readline()
        else:
            await reader.readexactly(int(headers.get(b"content-length", b"0")))
        if headers.get(b"connection") == b"close":
            self.close()
        return int(status_line.split()[1])

    def close(self) -> None:
        if self.streams is not None:
            self.streams[1].close()
            self.streams = None


async def run_fallback(
    url: str, bodies: list[bytes], clients: int, warmup: float, seconds: float
) -> dict[str, Any]:
    """The fallback's closed loop, one `Connection` per client, in this process."""
    source = itertools.cycle(bodies)  # shared: the same order whatever the client count
    latencies: list[float] = []
    statuses: Counter[str] = Counter()
    sent = 0
    cpu0 = _cpu(resource.RUSAGE_SELF)  # the loop's own CPU, not start-up and imports
    start = time.perf_counter()
    window = (start + warmup, start + warmup + seconds)

    async def client(connection: Connection) -> None:
        nonlocal sent
        while time.perf_counter() < window[1]:
            sent += 1
            t0 = time.perf_counter()
            try:
                status = str(await connection.post(next(source)))
            except (OSError, EOFError, ValueError) as e:  # reset, refused, a garbled response
                status = type(e).__name__
                connection.close()
            if window[0] <= (t1 := time.perf_counter()) <= window[1]:
                statuses[status] += 1
                if status == "200":
                    latencies.append((t1 - t0) * 1000)

    connections = [Connection(url) for _ in range(clients)]  # N clients, N sockets
    await asyncio.gather(*(client(c) for c in connections))
    for c in connections:
        c.close()
    wall = time.perf_counter() - start
    result = _result("python", seconds, wall, sent, len(bodies), dict(statuses))
    return result | {"url": url, "clients": clients, "latency_ms": summarize(latencies),
                     "client_cpu_s": _cpu(resource.RUSAGE_SELF) - cpu0}  # fmt: skip


def _cpu(who: int) -> float:
    usage = resource.getrusage(who)
    return usage.ru_utime + usage.ru_stime
